"""End-to-end fixtures: servers on fresh stores, PostgreSQL schemas, a shared workdir.

The model is generated once per session into a shared working folder (its
``.stormgen/build`` cache); every server after the first starts from that cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from e2e_support import PG_ENV, PrivatePostgres, Server


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder shared by the session's servers (the build cache lives here)."""
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def server(workdir: Path) -> Iterator[Server]:
    """A server with bearer tokens on a fresh SQLite file, for a whole test module."""
    db = workdir / f"shop-{uuid.uuid4().hex[:8]}.db"
    running = Server(workdir, f"sqlite:///{db}").start()
    yield running
    running.stop()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL store URL in a fresh schema (dropped afterwards); skips without a server."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set: no PostgreSQL server to test against")
    schema = f"e2e_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}schema={schema}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of the test's own, running (to stop and start: an outage)."""
    why = PrivatePostgres.missing()
    if why:
        pytest.skip(f"no private PostgreSQL server: {why}")
    server = PrivatePostgres()
    try:
        yield server.init()
    finally:
        server.remove()


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A folder on a 4 MiB tmpfs mounted for the test (to fill: a full disk); needs root."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a disk to fill) needs root")
    folder = Path(tempfile.mkdtemp(prefix="stormgen-disk-"))
    mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)]
    mounted = subprocess.run(mount, capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True, check=False).returncode:
            # still busy (a process that outlived the test): detach it now, freed later
            subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)
        folder.rmdir()


@pytest.fixture(scope="module", autouse=True)
def forget_generated_modules(workdir: Path) -> Iterator[None]:
    """Tests that import the generated package leave no trace for other test modules."""
    yield
    for name in [m for m in sys.modules if m == "coffee_shop" or m.startswith("coffee_shop.")]:
        del sys.modules[name]
    sys.path[:] = [p for p in sys.path if not p.startswith(str(workdir))]
