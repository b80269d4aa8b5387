"""A generated service runs on stormgen's core dependencies alone (README, "Installing").

The language, the checks and the generator (textX, arpeggio, networkx, jinja2, typer,
rich, ruff) are the ``generator`` extra; a generated project depends on ``stormgen``
without it. Here those modules are made unimportable in a real process: the golden
coffee shop serves an order through its policies and views, and the process lists the
modules it loaded as it exits.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

from e2e_support import BARISTA, CUSTOMER, Server, clean_env, wait_for

from stormgen import __version__

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "coffee_shop"
GENERATOR = ("textx", "arpeggio", "networkx", "jinja2", "typer", "rich", "ruff")

#: Blocks the generator's modules, records ``sys.modules`` at exit, then runs argv[3:]
#: as ``python -m coffee_shop ...`` (argv[1]: the modules, argv[2]: the record's file,
#: argv[3]: the project's ``src``) or, given no more, imports the runtime only.
LAUNCHER = """
import atexit, importlib.abc, json, runpy, signal, sys
blocked = set(sys.argv[1].split(","))
record, src, args = sys.argv[2], sys.argv[3], sys.argv[4:]

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Block())
atexit.register(lambda: open(record, "w").write(json.dumps(sorted(sys.modules))))
# uvicorn shuts down on SIGTERM, then raises it again: exit normally, so atexit runs
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
if args:
    sys.path.insert(0, src)
    sys.argv = ["coffee_shop", *args]
    runpy.run_module("coffee_shop", run_name="__main__")
else:
    import stormgen.runtime, stormgen.runtime.http, stormgen.runtime.store
"""


def _loaded(record: Path) -> list[str]:
    modules: list[str] = json.loads(record.read_text())
    return [m for m in modules if m.partition(".")[0] in GENERATOR]


class _RuntimeOnly(Server):
    """The golden coffee shop served by ``python -m coffee_shop serve``, generator blocked."""

    def __init__(self, workdir: Path, store: str, record: Path) -> None:
        super().__init__(workdir, store)
        self.record = record

    def command(self) -> list[str]:
        launcher = [sys.executable, "-c", LAUNCHER, ",".join(GENERATOR), str(self.record)]
        serve = ["serve", "--port", str(self.port), "--store", self.store]
        return [*launcher, str(GOLDEN / "src"), *serve]


def test_the_runtime_imports_nothing_of_the_generator(tmp_path: Path) -> None:
    record = tmp_path / "modules.json"
    command = [sys.executable, "-c", LAUNCHER, ",".join(GENERATOR), str(record), ""]
    done = subprocess.run(command, capture_output=True, text=True, env=clean_env(), check=False)
    assert done.returncode == 0, done.stderr
    assert "stormgen.runtime.http" in json.loads(record.read_text())
    assert _loaded(record) == []


def test_a_generated_service_serves_without_the_generator(tmp_path: Path) -> None:
    record = tmp_path / "modules.json"
    server = _RuntimeOnly(tmp_path, f"sqlite:///{tmp_path / 'shop.db'}", record).start()
    try:
        with server.client() as c:
            order = {"customer": "Ada", "drinks": [{"name": "Latte", "price": "3.50"}]}
            placed = c.post(
                "/ordering/order/place-order", json={**order, "total": "3.50"}, headers=CUSTOMER
            )
            assert placed.status_code == 201, placed.text
            ticket = f"/bar/ticket/{placed.json()['id']}"
            # the fake gateway charges it, the order is paid, the bar opens a ticket
            wait_for(lambda: c.get(ticket, headers=BARISTA).status_code == 200)
            assert c.get("/display/views/pickup", headers=BARISTA).status_code == 200
    finally:
        server.stop()
    assert server.process is not None and server.process.returncode == 0, server.log.read_text()
    assert "coffee_shop.app" in json.loads(record.read_text())
    assert _loaded(record) == []


def test_a_generated_project_depends_on_the_runtime_of_its_generator() -> None:
    project = tomllib.loads((GOLDEN / "pyproject.toml").read_text())["project"]
    assert project["dependencies"] == [f"stormgen~={__version__}"]
    core = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    named = {d.partition("[")[0].partition(">")[0].partition("<")[0] for d in core}
    assert not named & {*GENERATOR, "textx", "jinja2"}, named


def test_the_command_without_the_generator_says_what_to_install(tmp_path: Path) -> None:
    blocker = LAUNCHER.split("atexit.register")[0]
    script = blocker + "from stormgen._entry import main\nsys.argv = ['stormgen', '--help']\nmain()"
    command = [sys.executable, "-c", script, "typer", str(tmp_path / "unused"), ""]
    done = subprocess.run(command, capture_output=True, text=True, env=clean_env(), check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "error: the stormgen command needs the generator (typer is missing):"
        " pip install 'stormgen[generator]'"
    )
    assert "Traceback" not in done.stderr
