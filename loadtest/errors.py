"""Errors of the loadtest commands; ``__main__`` turns each into one line and exit status 1.

LoadTestError       anything that ends a subcommand
├── PrepareError    the API refused, or did not answer, while test data was made
├── DataError       the data file is missing or not what ``loadtest prepare`` writes
├── ScenarioError   the scenario file or plan is not one a run can follow
├── CheckError      the API refused, or did not answer, while invariants were checked
└── RunFailed       locust could not run, or reported failed requests
"""

from __future__ import annotations


class LoadTestError(Exception):
    """A subcommand could not do its job; the message says why in one line."""


class PrepareError(LoadTestError):
    """The API refused or did not answer a request made while preparing test data."""


class DataError(LoadTestError):
    """The test data file is missing, unreadable or not what ``prepare`` writes."""


class ScenarioError(LoadTestError):
    """The scenario file or the plan is not one a run can follow."""


class CheckError(LoadTestError):
    """The API refused or did not answer a request made to check a run's invariants."""


class RunFailed(LoadTestError):
    """Locust could not run, or some requests failed their checks."""
