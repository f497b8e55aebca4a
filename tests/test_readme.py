"""The README stays true: the two commands come first, and every setting is in its table."""

from __future__ import annotations

from pathlib import Path

from transparency.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_the_two_commands_come_first() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    assert "make serve" in first_block
    assert "make test" in first_block


def test_every_setting_is_in_the_table() -> None:
    for name in Settings.model_fields:
        env = "DATABASE_URL" if name == "database_url" else f"TRANSPARENCY_{name.upper()}"
        assert f"| `{env}` |" in README, env
