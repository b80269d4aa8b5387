"""End-to-end helpers: the real `stormgen run` server as a subprocess, on free ports."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "examples" / "coffee_shop.storm"
PG_ENV = "STORMGEN_TEST_POSTGRES"
STORMGEN = [sys.executable, "-m", "stormgen"]
TOKENS = "c1=Customer,b1=Barista,g1=PaymentGateway,o1=operator"
CUSTOMER = {"Authorization": "Bearer c1"}
BARISTA = {"Authorization": "Bearer b1"}
GATEWAY = {"Authorization": "Bearer g1"}
#: the raw log (`/events`, the stream, histories, `/failures`) is for operator tokens
OPERATOR = {"Authorization": "Bearer o1"}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def stormgen(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the stormgen CLI to completion."""
    return subprocess.run(
        [sys.executable, "-m", "stormgen", *args],
        cwd=cwd,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without stormgen settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
    env.update(extra)
    return env


class Server:
    """A `stormgen run` process serving the coffee shop; stop or kill it at will."""

    def __init__(self, workdir: Path, store: str, tokens: str | None = TOKENS, *args: str) -> None:
        self.args = args
        self.workdir = workdir
        self.store = store
        self.tokens = tokens
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[str] | None = None
        self.log = workdir / f"server-{self.port}-{uuid.uuid4().hex[:6]}.log"
        #: more environment variables for the process (after the STORMGEN_ ones are cleared)
        self.env: dict[str, str] = {}

    def start(self, timeout: float = 60.0) -> Server:
        """Start the server and wait until /health answers."""
        return self.launch().ready(timeout)

    def launch(self) -> Server:
        """Start the server process without waiting for it."""
        env = clean_env(**({"STORMGEN_TOKENS": self.tokens} if self.tokens else {}), **self.env)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.workdir,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        return self

    def ready(self, timeout: float = 60.0) -> Server:
        """Wait until the launched server answers /health."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited at start:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the server did not start in {timeout}s:\n{self.log.read_text()}")

    def command(self) -> list[str]:
        """The command line that starts the server."""
        options = ["--port", str(self.port), "--store", self.store, *self.args]
        return [*STORMGEN, "run", str(MODEL), *options]

    def client(self, **kwargs: Any) -> httpx.Client:
        """An HTTP client for this server."""
        return httpx.Client(base_url=self.url, timeout=kwargs.pop("timeout", 20), **kwargs)

    def kill(self) -> None:
        """SIGKILL: the process dies at once, mid-whatever."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then wait for a graceful shutdown (SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def wait_idle(self, client: httpx.Client, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until every view and policy has caught up with the log."""
        deadline = time.monotonic() + timeout
        while True:
            health: dict[str, Any] = client.get("/health").json()
            if all(c["behind"] == 0 for c in health["consumers"].values()):
                # a policy's command may still be appending: confirm once more
                again: dict[str, Any] = client.get("/health").json()
                if again["position"] == health["position"] and all(
                    c["behind"] == 0 for c in again["consumers"].values()
                ):
                    return again
            if time.monotonic() > deadline:
                raise AssertionError(f"consumers did not catch up: {health}")
            time.sleep(0.05)


def wait_for(check: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """Call ``check`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for a condition")
        time.sleep(interval)


class PrivatePostgres:
    """A PostgreSQL server of the test's own, to stop and start at will: a real outage
    without touching a server others use (initdb in a temporary folder, a free port,
    ``fsync=off``). As root the server runs as the ``postgres`` user."""

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.root = Path(tempfile.mkdtemp(prefix="stormgen-pg-"))
        self.data = self.root / "data"
        self.running = False

    @staticmethod
    def missing() -> str | None:
        """Why no private server can run here (None when one can)."""
        if _postgres_bin() is None:
            return "no PostgreSQL server binaries (initdb, pg_ctl) found"
        if os.geteuid() == 0:
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "running as root without a 'postgres' user to run PostgreSQL as"
            if shutil.which("runuser") is None:
                return "running as root without runuser to run PostgreSQL as 'postgres'"
        return None

    def init(self) -> PrivatePostgres:
        """Create the cluster and start the server."""
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        )
        return self.start()

    def start(self) -> PrivatePostgres:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 "
            f"-c unix_socket_directories={self.root} -c fsync=off"
        )
        log = str(self.root / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "start")
        self.running = True
        return self

    def stop(self) -> None:
        """Stop the server (fast: clients are disconnected at once)."""
        if self.running:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
            self.running = False

    def remove(self) -> None:
        """Stop the server and delete its files."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _run(self, tool: str, *args: str) -> None:
        assert self.bin is not None
        runner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        command = [*runner, str(self.bin / tool), *args]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{tool} failed: {done.stdout}{done.stderr}")


def _postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs (Debian's layout, else the PATH)."""
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    if found and (Path(found).parent / "initdb").exists():
        return Path(found).parent
    return None
