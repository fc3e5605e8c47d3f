"""`conftest.py` for PSI/J's suite: `--executors=executor[:launcher[:url]],...`
parametrizes every test that takes `execparams` (PSI/J's own option and format)."""

from __future__ import annotations

import pytest
from executor_test_params import ExecutorTestParams


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--executors",
        action="store",
        default="local:single",
        help="Comma-separated executor[:launcher[:url]] items to run the executor tests on.",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "execparams" in metafunc.fixturenames:
        items = [s.strip() for s in metafunc.config.getoption("executors").split(",")]
        params = [ExecutorTestParams(s) for s in items if s]
        metafunc.parametrize("execparams", params, ids=str)
