"""Property test: `stormgen validate` on mangled example models never crashes.

The examples are mutated (lines deleted or duplicated, tokens swapped or replaced,
random bytes inserted, files truncated, invalid UTF-8) and the real CLI entry point
runs on them: in-process for the bulk of the cases (``stormgen.cli.main`` inside
CliRunner's isolation, so the same exception handling as the console script), and a
handful of times as a real ``stormgen`` process. Whatever the input, the exit status
is 0, 1 or 2, nothing prints a traceback, a failure says something, and every E001
has a ``file:line:col``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from stormgen.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
# (root file to validate, file to mangle), relative to examples/.
TARGETS = [
    ("coffee_shop.storm", "coffee_shop.storm"),
    ("clinic.storm", "clinic.storm"),
    ("library/library.storm", "library/library.storm"),
    ("library/library.storm", "library/lending.storm"),
    ("library/library.storm", "library/catalog.storm"),
    ("library/library.storm", "library/members.storm"),
    ("language2.storm", "language2.storm"),
]
# Models that are not in examples/ (copied next to them): every language 2 form.
EXTRA = {"language2.storm": ROOT / "tests" / "generate" / "language2.storm"}


def _source(name: str) -> Path:
    return EXTRA.get(name, EXAMPLES / name)


TOKEN = re.compile(rb'"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|[0-9.]+|->|<->|[+\-]?=|==|\S')
# Tokens dropped in place of another: keywords and punctuation reach deep parser states.
REPLACEMENTS = [
    b"{",
    b"}",
    b"(",
    b")",
    b"[",
    b"]",
    b",",
    b":",
    b"=",
    b"==",
    b"->",
    b"<->",
    b"?",
    b'"',
    b"#",
    b"emit",
    b"event",
    b"command",
    b"context",
    b"state",
    b"not",
    b"in",
    b"none",
    b"pii",
    b"was",
    b"import",
    b'import "missing.storm"',
    b'import "library.storm"',
    b"list[",
    b"v0",
    b"-",
    b"1.5",
    b"Unknown",
    b"Ordering.Unknown",
    # language 2: conditionals, comprehensions, generators, values, let
    b"for",
    b"if",
    b"else",
    b"let",
    b"let x =",
    b"a if b else",
    b"[x for x in",
    b"[x for x in items if x]",
    b"[[y for y in x] for x in lines if any(z for z in x)]",
    b"sum(d.price for d in",
    b"first(",
    b"any(",
    b"Line {",
    b"Line { sku = 1 }",
    b"Drink { name = sku, price = }",
    b'matches(sku, "[A-")',
    b"round(",
    # durations: literals, defaults, arithmetic with datetimes
    b"duration",
    b"minutes(",
    b"= minutes(15)",
    b"hours(1.5)",
    b"now() - days(",
    b"-weeks(2) * 3",
]
E001_TEXT = re.compile(r"^(?P<loc>.+?):(\d+):(\d+): error\[E001\]: ", re.M)


@dataclass(frozen=True)
class Case:
    root: str
    mangled: str
    data: bytes


def _lines_op(data: bytes, index: int, duplicate: bool) -> bytes:
    lines = data.split(b"\n")
    i = index % len(lines)
    if duplicate:
        lines.insert(i, lines[i])
    else:
        del lines[i]
    return b"\n".join(lines)


def _tokens(data: bytes) -> list[tuple[int, int]]:
    return [m.span() for m in TOKEN.finditer(data)]


@st.composite
def cases(draw: st.DrawFn) -> Case:
    root, mangled = draw(st.sampled_from(TARGETS))
    data = _source(mangled).read_bytes()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(
                ["delete", "duplicate", "swap", "replace", "insert", "truncate", "utf8"]
            )
        )
        pos = draw(st.integers(0, max(0, len(data))))
        if kind in ("delete", "duplicate"):
            data = _lines_op(data, draw(st.integers(0, 10_000)), kind == "duplicate")
        elif kind in ("swap", "replace"):
            spans = _tokens(data)
            if len(spans) < 2:
                continue
            i = draw(st.integers(0, len(spans) - 1))
            a0, a1 = spans[i]
            if kind == "replace":
                data = data[:a0] + draw(st.sampled_from(REPLACEMENTS)) + data[a1:]
            else:
                j = draw(st.integers(0, len(spans) - 1))
                b0, b1 = spans[j]
                if j == i:
                    continue
                if j < i:
                    (a0, a1), (b0, b1) = (b0, b1), (a0, a1)
                data = data[:a0] + data[b0:b1] + data[a1:b0] + data[a0:a1] + data[b1:]
        elif kind == "insert":
            data = data[:pos] + draw(st.binary(min_size=1, max_size=8)) + data[pos:]
        elif kind == "truncate":
            data = data[:pos]
        else:
            junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80"]))
            data = data[:pos] + junk + data[pos:]
    return Case(root, mangled, data)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the examples; each case mangles one file and puts it back after."""
    target = tmp_path_factory.mktemp("fuzz") / "examples"
    shutil.copytree(EXAMPLES, target)
    for name, source in EXTRA.items():
        shutil.copyfile(source, target / name)
    return target


def _run_main(args: list[str]) -> tuple[int, str, str]:
    """Run the console script's ``main`` in-process; its exit status, stdout and stderr."""
    runner = CliRunner()
    saved = sys.argv
    with runner.isolation() as (out, err, _):
        sys.argv = ["stormgen", *args]
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved
        return (
            code,
            out.getvalue().decode("utf-8", "replace"),
            err.getvalue().decode("utf-8", "replace"),
        )


def _check_outcome(code: int, stdout: str, stderr: str, as_json: bool) -> None:
    both = stdout + stderr
    assert code in (0, 1, 2), both
    assert "Traceback" not in both
    assert "internal error" not in both
    if code != 0:
        assert both.strip(), "a failing run must say why"
    if as_json:
        if stdout.strip():
            for finding in json.loads(stdout):
                if finding["code"] == "E001":
                    assert finding["file"] and finding["line"] >= 1 and finding["column"] >= 1
    else:
        for line in both.splitlines():
            if "error[E001]" in line:
                assert E001_TEXT.match(line), line


@settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases(), as_json=st.booleans())
def test_validate_survives_mangled_models(case: Case, as_json: bool, workdir: Path) -> None:
    mangled = workdir / case.mangled
    mangled.write_bytes(case.data)
    try:
        args = ["validate", str(workdir / case.root)] + (["--format", "json"] if as_json else [])
        code, stdout, stderr = _run_main(args)
    finally:
        mangled.write_bytes(_source(case.mangled).read_bytes())
    _check_outcome(code, stdout, stderr, as_json)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(case=cases())
def test_test_survives_mangled_models(case: Case, workdir: Path) -> None:
    """`stormgen test` (scenarios run on the model) on the same mangled models."""
    mangled = workdir / case.mangled
    mangled.write_bytes(case.data)
    try:
        code, stdout, stderr = _run_main(["test", str(workdir / case.root)])
    finally:
        mangled.write_bytes(_source(case.mangled).read_bytes())
    _check_outcome(code, stdout, stderr, as_json=False)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda d: d[: len(d) // 2],
        lambda d: d.replace(b"emit", b"emmit", 1),
        lambda d: d.replace(b"context", b"\xff\xfe", 1),
        lambda d: b"\x00" + d,
        lambda d: d.replace(b"}", b"", 1),
        lambda d: d.replace(b"OrderPlaced", b"OrderPlacd", 1),
    ],
)
def test_validate_process_survives_mangled_models(mangle: object, tmp_path: Path) -> None:
    assert callable(mangle)
    path = tmp_path / "coffee_shop.storm"
    path.write_bytes(mangle((EXAMPLES / "coffee_shop.storm").read_bytes()))
    exe = shutil.which("stormgen", path=str(Path(sys.executable).parent))
    command = [exe] if exe else [sys.executable, "-m", "stormgen"]
    result = subprocess.run(
        [*command, "validate", str(path)], capture_output=True, text=True, check=False
    )
    _check_outcome(result.returncode, result.stdout, result.stderr, as_json=False)
    assert result.returncode != 0


@pytest.mark.parametrize(
    "snippet",
    [
        'require [x for x in] else "m"',
        'require any(x for x in items if) else "m"',
        'require any(x for in items) else "m"',
        'require [1, 2 for x in items] else "m"',
        'require (a if b) else "m"',
        'require a if b else else "m"',
        'require sum(x for x in [y for y in [z for z in items]]) > 0 else "m"',
        'require Line { sku = } else "m"',
        'require Line { = 1 } else "m"',
        'require Line { sku = 1, sku = 2 } == none else "m"',
        'require len(x for x in items for y in items) > 0 else "m"',
        "let = 1",
        "let for = 1",
        "let x = let y = 2",
        'require matches(sku, "(") else "m"',
        'require first(x for x in 3) else "m"',
        'require round(1) else "m"',
        'require minutes() > 0 else "m"',
        'require hours(1.5) > minutes(1) else "m"',
        'require now() + now() > now() else "m"',
        'require days(ways) / 2 > seconds(0) else "m"',
        'require today() - now() > weeks(1) else "m"',
        'require minutes(ways) * minutes(ways) > hours( else "m"',
    ],
)
def test_validate_survives_broken_language_2_forms(snippet: str, tmp_path: Path) -> None:
    text = _source("language2.storm").read_text()
    text = text.replace('require ways > 0 or ways == 0 else "never"', snippet)
    path = tmp_path / "language2.storm"
    path.write_text(text)
    for as_json in (False, True):
        args = ["validate", str(path)] + (["--format", "json"] if as_json else [])
        code, stdout, stderr = _run_main(args)
        _check_outcome(code, stdout, stderr, as_json)
        assert code in (1, 2), stdout + stderr  # every snippet is a mistake


@pytest.mark.parametrize(
    "line",
    [
        "then Tag { label = l.sku } for l in",
        "then Tag { label = l.sku } for in lines",
        "then Tag { label = l.sku } for l lines",
        "then Tag if",
        "then Tag { label = l.sku } for l in lines if l.qty > 1 if true",
        "then Tag { label = l.sku } if true for l in lines",
        "then Tag { label = l } for l in lines",
        "then Tag { label = x.sku } for l in lines",
    ],
)
def test_validate_survives_broken_fan_outs(line: str, tmp_path: Path) -> None:
    text = _source("language2.storm").read_text()
    text = text.replace("then Tag { label = l.sku } for l in lines if l.qty > 1", line)
    path = tmp_path / "language2.storm"
    path.write_text(text)
    code, stdout, stderr = _run_main(["validate", str(path)])
    _check_outcome(code, stdout, stderr, as_json=False)
    assert code in (1, 2), stdout + stderr


@pytest.mark.parametrize(
    "line",
    [
        "timer PaymentDue after",
        "timer PaymentDue at",
        "timer after minutes(15)",
        "timer PaymentDue after minutes(15) at now()",
        "timer PaymentDue after 15",
        "timer PaymentDue at minutes(15)",
        "cancel",
        "cancel PaymentDew",
        "end if",
        "end if 3",
        "paid += 1",
        "nowhere = 1",
        "then Cancel { reason = }",
        "on timer PaymentDue { end }",
        "starts",
    ],
)
def test_validate_survives_broken_process_lines(line: str, tmp_path: Path) -> None:
    source = Path(__file__).parent / "generate" / "processes.storm"
    text = source.read_text().replace("      timer Reminder after minutes(10)", f"      {line}")
    path = tmp_path / "processes.storm"
    path.write_text(text)
    for as_json in (False, True):
        args = ["validate", str(path)] + (["--format", "json"] if as_json else [])
        code, stdout, stderr = _run_main(args)
        _check_outcome(code, stdout, stderr, as_json)
        assert code in (1, 2), stdout + stderr  # every line is a mistake
