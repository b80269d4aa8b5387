"""``stormgen up MODEL --bus URL``: every bounded context of a model as a service of its
own, each with its own store, wired through the bus (docs/autonomous.md).

Each context runs as ``stormgen run MODEL --context C --store S --port P --bus URL`` in
a process of its own; their output is shown with the context's name in front. ``up``
prints each service's URL once it answers, and stops them all on Ctrl-C (or when one
of them stops).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import FrameType
from typing import IO, Annotated

import typer

from stormgen.cli._console import console
from stormgen.cli.run import fail, load_service

#: Where the services' SQLite files go by default, relative to the working directory.
UP_DIR = Path(".stormgen") / "up"
#: How long a service may take to answer `/health` after it started.
START_TIMEOUT = 90.0


def up(
    target: Annotated[
        Path, typer.Argument(help="A .storm model, or a project made by 'stormgen generate'.")
    ],
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            envvar="STORMGEN_BUS",
            help="nats://HOST:PORT[,HOST:PORT...]: the NATS JetStream server(s) linking "
            "the services (else $STORMGEN_BUS).",
            show_default=False,
        ),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Store URL template with {context} (the context's name in lower case), "
            "e.g. postgresql://localhost/shop?schema={context} "
            "(default: sqlite:///.stormgen/up/<package>-{context}.db).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Address the services listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of the first context's service; the next ones follow.")
    ] = 8000,
) -> None:
    """Run every context of a model as its own service with its own store, wired through
    NATS JetStream; Ctrl-C stops them all."""
    from stormgen.runtime.bus import BusConfigError, BusSettings

    if not bus:
        raise fail("stormgen up needs a bus: --bus nats://HOST:PORT (or set STORMGEN_BUS)")
    try:
        BusSettings.parse(bus)
    except BusConfigError as exc:
        raise fail(str(exc)) from None
    if store is not None and "{context}" not in store:
        raise fail(
            f"--store {store!r} names one store for every context: put {{context}} where "
            "each context's name goes (each context has a store of its own)"
        )
    service = load_service(target)
    contexts = list(service.contexts)
    if not contexts:
        raise fail(f"{target} has no bounded context to run")
    if not 0 < port < 65536 - len(contexts):
        raise fail(f"--port must be between 1 and {65535 - len(contexts)}, not {port}")
    if store is None:
        UP_DIR.mkdir(parents=True, exist_ok=True)
        store = f"sqlite:///{UP_DIR}/{service.package}-{{context}}.db"
    plan = []
    for offset, context in enumerate(contexts):
        taken = _taken(host, port + offset)
        if taken:
            raise fail(f"port {port + offset} (for {context}) is in use on {host}: {taken}")
        plan.append((context, port + offset, store.replace("{context}", context.lower())))
    services = Services(target, bus, host)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        for context, context_port, context_store in plan:
            services.launch(context, context_port, context_store)
        services.wait_ready()
        width = max(len(c) for c in contexts)
        for context, context_port, context_store in plan:
            url = f"http://{host}:{context_port}"
            console.print(
                f"{context:<{width}}  {url}  ({context_store})", markup=False, highlight=False
            )
        console.print(f"bus {bus}; Ctrl-C stops them all", markup=False, highlight=False)
        code = services.wait()
    except KeyboardInterrupt:
        code = 0
    finally:
        services.stop()
    if code:
        raise typer.Exit(code)


class Services:
    """The contexts' processes."""

    def __init__(self, target: Path, bus: str, host: str) -> None:
        self.target = target
        self.bus = bus
        self.host = host
        self.running: dict[str, tuple[subprocess.Popen[bytes], int]] = {}

    def launch(self, context: str, port: int, store: str) -> None:
        """Start one context's service; its output is copied with its name in front."""
        command = [sys.executable, "-m", "stormgen", "run", str(self.target)]
        command += ["--context", context, "--store", store, "--bus", self.bus]
        command += ["--host", self.host, "--port", str(port)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
        )
        assert process.stdout is not None
        threading.Thread(target=_copy, args=(context, process.stdout), daemon=True).start()
        self.running[context] = (process, port)

    def wait_ready(self) -> None:
        """Wait until every service answers `/health` (fail if one exits)."""
        deadline = time.monotonic() + START_TIMEOUT
        waiting = dict(self.running)
        while waiting:
            for context, (process, port) in list(waiting.items()):
                if process.poll() is not None:
                    raise fail(
                        f"the {context} service exited at start (code {process.returncode});"
                        " its output above says why",
                        1,
                    )
                if _answers(self.host, port):
                    del waiting[context]
            if time.monotonic() > deadline:
                raise fail(f"{', '.join(waiting)} did not answer within {START_TIMEOUT:g} s", 1)
            time.sleep(0.1)

    def wait(self) -> int:
        """Block until a service stops on its own (1) or Ctrl-C (raised)."""
        while True:
            for context, (process, _) in self.running.items():
                if process.poll() is not None:
                    console.print(
                        f"the {context} service stopped (code {process.returncode}):"
                        " stopping the others",
                        markup=False,
                        highlight=False,
                    )
                    return 1
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop every service (SIGTERM; SIGKILL after 10 s)."""
        for process, _ in self.running.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + 10
        for process, _ in self.running.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _copy(context: str, stream: IO[bytes]) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode("utf-8", "replace").rstrip()
        print(f"[{context}] {line}", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _taken(host: str, port: int) -> str | None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            sock.bind((host, port))
        except OSError as exc:
            return exc.strerror or str(exc)
    return None


def _answers(host: str, port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False
