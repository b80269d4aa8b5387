"""`validate` is the only gate: a model it finds no error in always generates.

Every model of the repository (the examples, and the models the tests read) that
validates clean generates; and models mutated at random from them (a field's type
changed, made optional or a list, a line dropped or doubled, two names swapped) either
get an error from `validate` (and `generate` refuses them with it) or generate, never
stopping with any other error or a traceback. Each mutant is generated with its code
formatted by ruff, which also proves the generated Python parses.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from stormgen.checks import check
from stormgen.diagnostics import Level, StormgenError
from stormgen.lang import parse_model
from stormgen.render.python import GenerateError, render_project

from ._helpers import EXAMPLES, ROOT, check_project, generate

#: The models the tests read, besides the examples (not the invalid ones, on purpose).
TEST_MODELS = sorted(
    p
    for p in (ROOT / "tests").rglob("*.storm")
    if "invalid" not in p.parts and "golden" not in p.parts
)
#: One-file models to mutate (a mutant is written alone to a temporary folder).
BASES = sorted(
    [*(ROOT / "tests" / "generate").glob("*.storm"), *(ROOT / "examples").glob("*.storm")]
)
MUTANTS = 40
_FIELD_TYPE = re.compile(r"(\b[a-z_][a-z0-9_]*\s*:\s*)([A-Za-z_][\w.]*(?:\[[\w.?]+\])?\??)")
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9]*\b")
_PRIMITIVES = ["str", "int", "decimal", "float", "bool", "uuid", "date", "datetime", "duration"]


def _errors(path: Path) -> list[str] | None:
    """The error codes `validate` reports (None: the file does not even parse)."""
    try:
        model = parse_model(path)
    except StormgenError:
        return None
    return [d.code for d in check(model) if d.level is Level.ERROR]


@pytest.mark.parametrize(
    "model", [*EXAMPLES, *TEST_MODELS], ids=lambda p: p.relative_to(ROOT).as_posix()
)
def test_a_model_that_validates_clean_generates(model: Path) -> None:
    errors = _errors(model)
    assert errors is not None, f"{model} does not parse"
    if errors:
        # Some test models are meant to have errors: then generate refuses them, located.
        with pytest.raises(GenerateError, match=r"the model has errors: .*:\d+:\d+: E\d{3}"):
            render_project(parse_model(model), format_code=False)
        return
    assert render_project(parse_model(model), format_code=False)


def _types(text: str) -> list[str]:
    """Types to put in a field: primitives, the model's values and enums, lists, optionals."""
    declared = re.findall(r"\b(?:value|enum)\s+([A-Z]\w*)", text)
    plain = _PRIMITIVES + declared
    return plain + [f"{p}?" for p in plain] + [f"list[{p}]" for p in plain]


def _mutate(text: str, rng: random.Random) -> str:
    lines = text.splitlines()
    for _ in range(rng.randint(1, 3)):
        kind = rng.choice(["type", "optional", "drop", "double", "swap"])
        fields = [i for i, line in enumerate(lines) if _FIELD_TYPE.search(line)]
        if kind in ("type", "optional") and fields:
            i = rng.choice(fields)
            found = list(_FIELD_TYPE.finditer(lines[i]))
            m = rng.choice(found)
            old = m.group(2)
            if kind == "type":
                new = rng.choice(_types(text))
            else:
                new = old[:-1] if old.endswith("?") else old + "?"
            lines[i] = lines[i][: m.start(2)] + new + lines[i][m.end(2) :]
        elif kind == "drop" and len(lines) > 3:
            del lines[rng.randrange(1, len(lines))]
        elif kind == "double":
            i = rng.randrange(1, len(lines))
            lines.insert(i, lines[i])
        else:
            names = sorted(set(_NAME.findall(text)))
            if len(names) >= 2:
                a, b = rng.sample(names, 2)
                i = rng.randrange(len(lines))
                lines[i] = re.sub(rf"\b{a}\b", b, lines[i])
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(MUTANTS))
def test_a_mutant_validates_with_errors_or_generates(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    base = rng.choice(BASES)
    path = tmp_path / base.name
    path.write_text(_mutate(base.read_text(encoding="utf-8"), rng), encoding="utf-8")
    errors = _errors(path)
    if errors is None:
        return  # a syntax error: the parser reports it (tests/test_fuzz_cli.py), located
    if errors:
        with pytest.raises(GenerateError, match=r"the model has errors"):
            render_project(parse_model(path))
        return
    files = render_project(parse_model(path))
    assert any(name.endswith("app.py") for name in files), sorted(files)


SELF_CONTAINED = """\
model Loops
actor Clerk
context Shop {
  value Part { name: str, inside: Part }
  external Parts {
    command Ask { sku: str }
    event Answered { sku: str, part: Part }
  }
  aggregate Item {
    id sku: str
    command Request by Clerk creates { emit Requested }
    event Requested { }
  }
  policy AskParts {
    when Requested
    then Ask
  }
}
"""


def test_a_value_that_contains_itself_is_e108_not_a_stop_in_generate(tmp_path: Path) -> None:
    # The fake adapter of `Parts` must invent a `Part`: it never could (one inside
    # another without end). `validate` says so at the field; `generate` refuses with it.
    path = tmp_path / "loops.storm"
    path.write_text(SELF_CONTAINED, encoding="utf-8")
    assert _errors(path) == ["E108"]
    with pytest.raises(GenerateError, match=r"loops.storm:4:27: E108 value `Part` contains"):
        render_project(parse_model(path), format_code=False)
    # `inside: Part?` ends the chain: the fake answers with `Part(name="")`
    path.write_text(SELF_CONTAINED.replace("inside: Part }", "inside: Part? }"), encoding="utf-8")
    assert _errors(path) == []
    files = render_project(parse_model(path), format_code=False)
    assert 'part=Part(name="")' in str(files["src/loops/shop/parts.py"])


LETS = """\
model Lets
actor Clerk
context Shop {
  aggregate Basket {
    id basket_id: uuid
    state { qtys: list[int] = [], note: str? }
    command Add by Clerk creates {
      qty: int
      let sum = qty * 2
      require sum(q for q in qtys) + sum >= 0 else "never"
      let len = sum + 1
      let Big = len > 3
      let events = [sum, len]
      require note == none or len(note) > 0 else "never"
      require Big or not Big else "never"
      emit Added { qtys = events, big = Big }
    }
    published event Added { qtys: list[int], big: bool }
  }
}
"""


def test_a_let_is_a_local_variable_clear_of_the_methods_names(
    tmp_path: Path, mypy_cache: Path
) -> None:
    # A `let` named like a builtin the compiled code calls (`sum`, `len`), like the emit
    # method's list (`events`) or in PascalCase gets a `_`; each is assigned once in
    # each method, right before the first line that reads it, in the command's order.
    path = tmp_path / "lets.storm"
    path.write_text(LETS, encoding="utf-8")
    assert _errors(path) == []
    project = generate(path, tmp_path / "lets")
    basket = (project / "src/lets/shop/basket.py").read_text(encoding="utf-8")
    check = basket[basket.index("    def check_add(") : basket.index("    def emit_add(")]
    assert check.split("\n")[1:7] == [
        "        sum_ = command.qty * 2",
        '        require(sum(q for q in state.qtys) + sum_ >= 0, "never")',
        '        require(state.note is None or len(state.note) > 0, "never")',
        "        len_ = sum_ + 1",
        "        Big_ = len_ > 3",
        '        require(Big_ or not Big_, "never")',
    ]
    emit = basket[basket.index("    def emit_add(") :]
    assert "        events_ = (sum_, len_)\n" in emit
    assert "Added(basket_id=command.basket_id, qtys=events_, big=Big_)" in emit
    check_project(project, mypy_cache)
