"""A NATS server with JetStream of a test's own: a free loopback port, a store folder
under tmp, stopped (or killed) and started again at will on the same port and folder."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from e2e_support import free_port


class NatsServer:
    """``nats-server -js`` on 127.0.0.1 and a port of its own."""

    def __init__(self, *args: str) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.root = Path(tempfile.mkdtemp(prefix="stormgen-nats-"))
        self.process: subprocess.Popen[bytes] | None = None
        #: more command-line arguments (a cluster's)
        self.args = list(args)

    @staticmethod
    def missing() -> str | None:
        """Why no server can run here (None when one can)."""
        return None if shutil.which("nats-server") else "nats-server is not on the PATH"

    def start(self, timeout: float = 15.0) -> NatsServer:
        """Start the server (on its port and store) and wait until it accepts clients."""
        log = (self.root / "server.log").open("ab")
        command = ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port)]
        command += ["-sd", str(self.root / "store"), *self.args]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"nats-server exited: {(self.root / 'server.log').read_text()}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    if sock.recv(7) == b'INFO {"':
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError(f"nats-server did not start within {timeout} s")

    def kill(self) -> None:
        """SIGKILL: the broker dies at once."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM, then wait (SIGKILL after 10 s)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def remove(self) -> None:
        """Stop the server and delete its store."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


class NatsCluster:
    """Three JetStream servers clustered on loopback ports (``STORMGEN_BUS_REPLICAS=3``
    keeps a stream on all three); any one may be killed and started again."""

    def __init__(self, size: int = 3) -> None:
        routes = [free_port() for _ in range(size)]
        joined = ",".join(f"nats://127.0.0.1:{p}" for p in routes)
        self.nodes = [
            NatsServer(
                "-n", f"n{i}", "--cluster_name", "stormgen",
                "--cluster", f"nats://127.0.0.1:{port}", "--routes", joined,
            )
            for i, port in enumerate(routes)
        ]  # fmt: skip
        self.url = "nats://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def start(self) -> NatsCluster:
        for node in self.nodes:
            node.start()
        return self

    def remove(self) -> None:
        for node in self.nodes:
            node.remove()
