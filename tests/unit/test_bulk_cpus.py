"""Which CPUs bulk work may run on (TRANSPARENCY_BULK_CPUS): every CPU but one by default,
so that a claim always finds a core no job, render or decode runs on."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from transparency.runtime.settings import Settings
from transparency.runtime.workers import parse_cpus


def test_auto_keeps_the_lowest_cpu_for_the_claims() -> None:
    assert parse_cpus("auto", {0, 1}) == {1}
    assert parse_cpus("auto", {2, 3, 5}) == {3, 5}
    assert parse_cpus(" AUTO ", {0, 1, 2, 3}) == {1, 2, 3}


def test_one_cpu_is_shared_rather_than_left_without_bulk_work() -> None:
    assert parse_cpus("auto", {4}) == {4}


def test_all_and_lists() -> None:
    assert parse_cpus("all", {0, 1}) == {0, 1}
    assert parse_cpus("1-3,5", set(range(8))) == {1, 2, 3, 5}
    assert parse_cpus("0, 2", {0, 1, 2}) == {0, 2}
    assert parse_cpus("1-7", {0, 1, 2}) == {1, 2}  # only those this machine has


@pytest.mark.parametrize("spec", ["x", "1-", "-1", "1-a", "1.5"])
def test_what_is_not_a_cpu_list_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not a CPU number"):
        parse_cpus(spec, {0, 1})


def test_a_list_naming_none_of_the_machines_cpus_is_refused() -> None:
    with pytest.raises(ValueError, match="names none"):
        parse_cpus("7-9", {0, 1})


def test_settings_refuse_a_bad_list_at_start() -> None:
    beyond = max(os.sched_getaffinity(0)) + 1
    with pytest.raises(ValidationError, match="bulk_cpus"):
        Settings(bulk_cpus=str(beyond))
    assert Settings(bulk_cpus="all").bulk_cpus == "all"
