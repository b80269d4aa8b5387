"""The OpenAPI document is the truth: schemathesis with all its checks, on every example.

Each example is served by the real `stormgen run` (uvicorn, a SQLite file) with bearer
tokens configured: one per actor, one per external system and one for `operator`.
schemathesis (its CLI, as CI would run it) then tests every operation with the token
that may use it: a command with one of its actors' (the document's `x-stormgen-by`),
an external system's event with that system's (`x-stormgen-system`), everything else
with the operator's. Tokens rather than the open mode so every authorized route is
exercised as deployed and the authentication checks (`ignored_auth`: a request
without or with a wrong token must be a 401) have something to check.

`--checks all`: response schemas, status codes, content types and headers, schema-valid
requests accepted, schema-violating ones rejected, missing required headers, methods
not allowed, use after free and resource availability, in the coverage, fuzzing and
stateful phases, with a fixed seed and a bounded number of cases per operation.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import REPO, Server, clean_env

from stormgen.lang import parse_model

#: ~2,000 cases an example: minutes on a busy machine (other tests in parallel workers)
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ST = Path(sys.executable).with_name("st")
EXAMPLES = {
    "coffee_shop": REPO / "examples" / "coffee_shop.storm",
    "clinic": REPO / "examples" / "clinic.storm",
    "library": REPO / "examples" / "library" / "library.storm",
    "shop_saga": REPO / "examples" / "shop_saga.storm",
}
#: Cases per operation and phase: enough to cover every field's edge cases in the
#: coverage phase (which does not count against it) and a sample in fuzzing.
MAX_EXAMPLES = 10
SEED = 20261207
OPERATOR = "operator"


class ExampleServer(Server):
    """`stormgen run` on any example model (the shared Server serves the coffee shop)."""

    def __init__(self, workdir: Path, model: Path, tokens: str, store: str | None = None) -> None:
        db = workdir / f"{model.stem}-{uuid.uuid4().hex[:8]}.db"
        super().__init__(workdir, store or f"sqlite:///{db}", tokens)
        self.model = model

    def command(self) -> list[str]:
        options = ["--port", str(self.port), "--store", self.store]
        return [sys.executable, "-m", "stormgen", "run", str(self.model), *options]


def principals(model_path: Path) -> dict[str, str]:
    """A token per actor, external system (`Context.System`) and operator: token -> name."""
    model = parse_model(model_path)
    actors = {a.name for a in model.actors} | {a.name for c in model.contexts for a in c.actors}
    systems = {f"{c.name}.{e.name}" for c in model.contexts for e in c.externals}
    names = sorted(actors) + sorted(systems) + [OPERATOR]
    return {f"token-{i}": name for i, name in enumerate(names)}


def config(document: dict[str, Any], tokens: dict[str, str]) -> str:
    """schemathesis.toml: each operation with the token of a principal that may use it."""
    token_of = {name: token for token, name in tokens.items()}
    lines = [
        _bearer(token_of[OPERATOR]),
        "request-timeout = 10",
        # a schema-violating body can also be refused for its size before it is read
        "checks.negative_data_rejection.expected-statuses = "
        '[400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]',
        "",
        # the event stream never ends: read its first event, or for half a second
        # (a case after the log's head waits that long: fewer of them)
        "[[operations]]",
        'include-name = "GET /events/stream"',
        "max-stream-events = 1",
        "request-timeout = 0.5",
        "generation.max-examples = 3",
    ]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            who = operation.get("x-stormgen-by", [])
            system = operation.get("x-stormgen-system")
            name = who[0] if who else system
            if name is None:
                continue
            lines += [
                "",
                "[[operations]]",
                # the operation's name: a path and a method given apart match either
                f"include-name = {json.dumps(f'{method.upper()} {path}')}",
                _bearer(token_of[name]),
            ]
            if any(p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])):
                # schemathesis sends one key with several bodies: the second is rightly
                # refused (422 `key_reused`), which no schema can say in advance
                lines.append(
                    "checks.positive_data_acceptance.expected-statuses = "
                    '["2xx", "3xx", 401, 403, 404, 409, 422, 429, "5xx"]'
                )
    # "mostly rejected generated data": a published schema looser than the API
    lines.insert(0, 'warnings = { fail-on = ["validation_mismatch"] }')
    return "\n".join(lines) + "\n"


def _bearer(token: str) -> str:
    return "headers = { Authorization = " + json.dumps(f"Bearer {token}") + " }"


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_the_openapi_document_holds_for_every_operation(example: str, tmp_path: Path) -> None:
    check(example, tmp_path)


def test_the_openapi_document_holds_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    # text ids and texts everywhere: PostgreSQL keeps no NUL character, SQLite does
    check("library", tmp_path, postgres_url)


def check(example: str, tmp_path: Path, store: str | None = None) -> None:
    """Serve the example and run schemathesis against it; fail on any finding."""
    model = EXAMPLES[example]
    tokens = principals(model)
    spec = ",".join(f"{token}={name}" for token, name in tokens.items())
    server = ExampleServer(tmp_path, model, spec, store).start()
    try:
        document = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
        settings = tmp_path / "schemathesis.toml"
        settings.write_text(config(document, tokens))
        started = time.monotonic()
        done = subprocess.run(
            [
                str(ST),
                "--config-file",
                str(settings),
                "run",
                f"{server.url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(MAX_EXAMPLES),
                "--seed",
                str(SEED),
                "--generation-database",
                "none",
                "--workers",
                "1",
                "--no-color",
            ],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=540,
            check=False,
        )
        took = time.monotonic() - started
    finally:
        server.stop()
    # the whole output stays beside the config; the message keeps lines short (a
    # generated body can be megabytes long)
    (tmp_path / "schemathesis.out").write_text(done.stdout + done.stderr)
    report = "\n".join(line[:300] for line in (done.stdout + done.stderr).splitlines())[-20000:]
    assert done.returncode == 0, f"schemathesis failed on {example} ({took:.0f} s):\n{report}"
    print(f"{example}: schemathesis passed in {took:.1f} s", file=sys.stderr)
    assert "Tested:" in done.stdout, report
