"""``stormgen run MODEL.storm|DIR``: serve a model (generated into a cache) or a project.

For a model, the Python project is generated into ``.stormgen/build/<package>`` (kept
while the model files, stormgen and its generator are unchanged) and imported from
there; for a folder, the generated project's package is imported from its ``src``.
The operations commands (:mod:`stormgen.cli.ops`) load services the same way.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Annotated, Any

import typer

from stormgen.cli._console import err_console
from stormgen.cli._report import render_text
from stormgen.diagnostics import ModelError, StormgenError

#: Where ``run`` keeps generated projects, relative to the working directory.
BUILD_DIR = Path(".stormgen") / "build"
_STAMP = ".stormgen-build"


@dataclass(frozen=True)
class Service:
    """A generated service's ``app`` module, ready to open an application."""

    package: str
    module: ModuleType
    root: Path
    title: str
    #: the .storm file the service was generated from (None for a project folder)
    model: Path | None = None

    @property
    def contexts(self) -> tuple[str, ...]:
        """The bounded contexts the service has."""
        return tuple(getattr(self.module, "CONTEXTS", ()))

    def open(self, store: str | None, contexts: list[str] | None = None) -> Any:
        """Open the service's Application on a store URL (None: the default store)."""
        return self.module.open_application(store, contexts)

    def board(self) -> Callable[[], str] | None:
        """What renders the model's board page (served at ``/board``), when the model is known."""
        model = self.model
        if model is None:
            return None

        def render() -> str:
            from stormgen import load
            from stormgen.render.board import render_board

            return render_board(load(model))

        return render


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one sentence on stderr and return the Exit to raise."""
    err_console.print(f"error: {message}", markup=False, highlight=False)
    return typer.Exit(code)


def _fingerprint(files: list[Path]) -> str:
    """A hash of the model files and of what generates code from them."""
    import stormgen

    digest = hashlib.sha256(f"stormgen {stormgen.__version__}\n".encode())
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    # The generator itself may change under an unchanged version (development).
    generator = [Path(stormgen.__file__).parent / "render" / "python"]
    try:
        from stormgen.resources import templates_dir

        generator.append(Path(str(templates_dir())) / "python")
    except Exception:  # resources missing: the version alone decides
        pass
    for folder in generator:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                stat = path.stat()
                digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def build_model(model_path: Path, build_dir: Path | None = None) -> Path:
    """Generate the project of a model into the build cache; return the project folder."""
    import stormgen
    from stormgen.render.output import RenderedFile
    from stormgen.render.python import render_project
    from stormgen.render.python.names import package_name

    loaded = stormgen.load(model_path)
    package = package_name(loaded.model.name)
    build = build_dir or BUILD_DIR
    root = build / package
    sources = [Path(f.path) for f in loaded.model.files] or [model_path]
    stamp = _fingerprint([p.resolve() for p in sources])
    stamp_file = root / _STAMP
    build.mkdir(parents=True, exist_ok=True)
    # Several `run`s may start at once (one per context): one builds, the others wait.
    with _locked(build / f".{package}.lock"):
        if stamp_file.is_file() and stamp_file.read_text(encoding="utf-8") == stamp:
            return root
        files = render_project(loaded)
        # The cache is ours: start afresh so files of removed elements do not linger.
        if root.exists():
            shutil.rmtree(root)
        for rel, content in files.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            text = content.content if isinstance(content, RenderedFile) else content
            with target.open("w", encoding="utf-8", newline="") as fh:
                fh.write(text)
        # Written last: a build cut short is never taken for a finished one.
        stamp_file.write_text(stamp, encoding="utf-8")
    return root


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a no-op where fcntl does not exist)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _find_package(project: Path) -> str:
    src = project / "src"
    candidates = sorted(
        p.name for p in src.glob("*") if (p / "app.py").is_file() and (p / "__main__.py").is_file()
    )
    if not candidates:
        raise fail(f"{project} is not a generated project (no src/<package>/app.py)")
    if len(candidates) > 1:
        raise fail(f"{project} holds several packages ({', '.join(candidates)}); keep one")
    return candidates[0]


def load_service(target: Path) -> Service:
    """Import the service of a model file (generating it first) or of a project folder."""
    if not target.exists():
        raise fail(f"{target}: no such file or folder")
    if target.is_dir():
        project = target
    else:
        if target.suffix != ".storm":
            raise fail(f"{target}: expected a .storm model or a generated project folder")
        try:
            project = build_model(target)
        except ModelError as exc:
            # a syntax or import error: its findings with their locations
            for line in render_text(exc.diagnostics, show_summary=False):
                err_console.print(line, markup=False, highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except StormgenError as exc:
            raise fail(str(exc), exc.exit_code) from None
    package = _find_package(project)
    src = str((project / "src").resolve())
    if src not in sys.path:
        sys.path.insert(0, src)
    try:
        module = importlib.import_module(f"{package}.app")
    except Exception as exc:
        raise fail(f"cannot import the service {package} from {src}: {exc}", 1) from None
    # the package's docstring is "Name: description" (the model's name, as `serve` says)
    doc = sys.modules[package].__doc__ or package
    title = doc.strip().splitlines()[0].split(": ", 1)[0]
    return Service(package, module, project, title, None if target.is_dir() else target)


def check_context(service: Service, context: str | None) -> list[str] | None:
    """The ``--context`` option as a list, after checking the service has it."""
    if context is None:
        return None
    if service.contexts and context not in service.contexts:
        raise fail(
            f"the service has no context {context!r}; choose one of {', '.join(service.contexts)}"
        )
    return [context]


StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        help="Store URL: sqlite:///FILE, postgresql://..., memory:// "
        "(default: $STORMGEN_STORE, else sqlite:///./.stormgen/events.db).",
        show_default=False,
    ),
]


def run(
    target: Annotated[
        Path, typer.Argument(help="A .storm model, or a project made by 'stormgen generate'.")
    ],
    store: StoreOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    context: Annotated[
        str | None, typer.Option(help="Host only this bounded context.", show_default=False)
    ] = None,
    tokens_file: Annotated[
        Path | None,
        typer.Option(
            "--tokens-file",
            help="Bearer tokens, one token=Principal a line (else $STORMGEN_TOKENS): an "
            "actor (commands, views, state), an external system (posts its own events "
            "only) or operator (the raw log: /events, the stream, histories, /failures).",
            show_default=False,
        ),
    ] = None,
    bus: Annotated[
        str | None,
        typer.Option(
            "--bus",
            envvar="STORMGEN_BUS",
            help="nats://HOST:PORT[,HOST:PORT...]: with --context and a store of its own, "
            "the context runs autonomously, its published events relayed through NATS "
            "JetStream and the events it consumes received from there (docs/autonomous.md; "
            "else $STORMGEN_BUS).",
            show_default=False,
        ),
    ] = None,
    fake: Annotated[
        list[str] | None,
        typer.Option(
            "--fake",
            metavar="SYSTEM=EVENT",
            help="An external system without a real adapter gets a fake one, which answers "
            "every command with the first event the system declares; this makes it answer "
            "with another of its events, e.g. PaymentGateway=CardDeclined, to walk the sad "
            "path (repeatable; else $STORMGEN_FAKES).",
            show_default=False,
        ),
    ] = None,
    test_clock: Annotated[
        bool,
        typer.Option(
            "--test-clock",
            help="For end-to-end tests only: run on a clock that POST /_test/clock moves "
            "forward (timers due meanwhile fire at once); refused with tokens configured "
            "(else $STORMGEN_TEST_CLOCK=1).",
        ),
    ] = False,
) -> None:
    """Serve a model or a generated project over HTTP (views, policies and processes run
    too)."""
    from stormgen.runtime import FakeChoiceError, StormgenRuntimeError, fake_choices
    from stormgen.runtime.clock import TEST_CLOCK_ENV
    from stormgen.runtime.errors import InvalidStoreURL
    from stormgen.runtime.http import ServeError, TokenConfigError, serve

    if not 0 < port < 65536:
        raise fail(f"--port must be between 1 and 65535, not {port}")
    service = load_service(target)
    contexts = check_context(service, context)
    if test_clock:
        os.environ[TEST_CLOCK_ENV] = "1"  # the application opened below takes a TestClock
    try:
        application = service.open(store, contexts)
    except InvalidStoreURL as exc:
        raise fail(str(exc)) from None
    except StormgenRuntimeError as exc:
        raise fail(f"cannot open the store: {exc}", 1) from None
    try:
        _steer_fakes(application, fake_choices(fake))
        serve(
            application,
            host,
            port,
            tokens_file=os.fspath(tokens_file) if tokens_file else None,
            contexts=contexts,
            title=service.title,
            board=service.board(),
            announce=lambda line: err_console.print(line, markup=False, highlight=False),
            bus=bus,
            namespace=service.package,
        )
    except (ServeError, TokenConfigError, FakeChoiceError) as exc:
        raise fail(str(exc)) from None
    finally:
        application.close()


def _steer_fakes(application: Any, choices: dict[str, str]) -> None:
    """Set the fake adapters' answers and say what each answers with."""
    from stormgen.runtime import steer_fakes

    answers = steer_fakes(application.ports, choices)
    if answers:
        said = ", ".join(f"{system} answers {event}" for system, event in answers.items())
        err_console.print(f"fake adapters: {said}", markup=False, highlight=False)
