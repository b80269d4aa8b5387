"""How the suite is shared out among pytest-xdist workers (``scripts/test.sh`` runs ``-n 3``).

A test module goes to one worker as a whole (``--dist loadfile`` in pyproject.toml): its
module fixtures are built once and its tests run in order. The exceptions are the
modules in ``SPREAD``, whose tests are long and independent of each other: each of
their tests goes to whichever worker is free. Modules marked ``slow`` are handed out
first (``--no-loadscope-reorder`` keeps the order collected), so that no module of
minutes starts last and runs alone while the other workers sit idle.
"""

from __future__ import annotations

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadFileScheduling

#: Modules whose tests share nothing but session fixtures, one worker per test.
SPREAD = frozenset(
    {
        "tests/e2e/test_schemathesis.py",
        "tests/e2e/test_e2e_bus_services.py",
        "tests/e2e/test_e2e_replay_live.py",
        "tests/generate/test_projects.py",
        "tests/test_fuzz_cli.py",
    }
)


class _SpreadScheduling(LoadFileScheduling):
    """``loadfile``, except that each test of a module in ``SPREAD`` is a unit of its own."""

    def _split_scope(self, nodeid: str) -> str:
        module = super()._split_scope(nodeid)
        return nodeid if module in SPREAD else module


def pytest_xdist_make_scheduler(config: pytest.Config, log: Producer) -> LoadFileScheduling | None:
    if config.getoption("dist") != "loadfile":
        return None
    missing = sorted(m for m in SPREAD if not (config.rootpath / m).is_file())
    if missing:
        raise pytest.UsageError(f"tests/conftest.py: SPREAD names missing modules: {missing}")
    return _SpreadScheduling(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker (whose collection the scheduler follows), `slow` modules come first."""
    if hasattr(config, "workerinput"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)
