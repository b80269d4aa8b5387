"""Every example (and an adversarial model) generates a clean project whose own tests pass.

Each project goes through ``ruff check``, ``ruff format --check``, ``mypy --strict``
(one shared cache) and its own generated pytest suite, all in subprocesses.
"""

from __future__ import annotations

import ast
import runpy
from pathlib import Path

import pytest

from ._helpers import (
    CLASHES,
    EXAMPLES,
    FEATURES,
    ROOT,
    TRICKY,
    check_project,
    generate,
    render,
)

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("model", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_project_is_clean_and_its_tests_pass(
    model: Path, tmp_path: Path, mypy_cache: Path
) -> None:
    project = generate(model, tmp_path / model.stem)
    assert list((project / "tests").glob("test_*.py")), "no generated tests"
    check_project(project, mypy_cache)


def test_every_language_feature_makes_a_clean_project(tmp_path: Path, mypy_cache: Path) -> None:
    project = generate(FEATURES, tmp_path / "features")
    check_project(project, mypy_cache)
    quote = (project / "src/features/sales/quote.py").read_text()
    assert 'was={"label": "title"}' in quote and "version=2" in quote
    assert 'pii=("customer",)' in quote
    assert "self.clock.now().date()" in quote  # date(now()), on the bound clock
    # every command's accepted case and every guard's rejection were found
    tests = (project / "tests/test_sales_quote.py").read_text()
    assert "could not find" not in tests


def test_same_names_in_several_contexts_make_a_clean_project(
    tmp_path: Path, mypy_cache: Path
) -> None:
    project = generate(CLASHES, tmp_path / "clashes")
    check_project(project, mypy_cache)
    views = (project / "src/dup/c/views.py").read_text()
    assert "from dup.a.item import Created\n" in views
    assert "from dup.b.item import Created as BCreated\n" in views


def test_adversarial_names_and_strings_make_a_clean_project(
    tmp_path: Path, mypy_cache: Path
) -> None:
    project = generate(TRICKY, tmp_path / "tricky")
    check_project(project, mypy_cache)


def test_the_benchmarks_synthetic_model_makes_a_clean_project(
    tmp_path: Path, mypy_cache: Path
) -> None:
    """benchmarks/synth.py (two contexts: the cross-context policies are there)."""
    synth = runpy.run_path(str(ROOT / "benchmarks" / "synth.py"))["synth"]
    model = tmp_path / "synth.storm"
    model.write_text(synth(12), encoding="utf-8")
    project = generate(model, tmp_path / "synth")
    check_project(project, mypy_cache)
    assert len(list((project / "tests").glob("test_c*_a*.py"))) == 12


def test_model_strings_are_inert_in_generated_code() -> None:
    """Quotes, backslashes, newlines and triple quotes in the model inject no code."""
    files = render(TRICKY)
    for rel, rendered in files.items():
        if not rel.endswith(".py"):
            continue
        tree = ast.parse(rendered.content, filename=rel)
        for node in ast.walk(tree):
            # The actor's description tries `import os; os.system(...)`.
            assert not (isinstance(node, ast.Attribute) and node.attr == "system"), rel
            assert not (isinstance(node, ast.Name) and node.id == "INJECTED"), rel
            if isinstance(node, ast.Import) and rel != "src/tricky/__main__.py":
                assert "os" not in [a.name for a in node.names], rel
    actor_doc = '"""; import os; os.system("echo INJECTED") #'
    init = files["src/tricky/__init__.py"].content
    assert 'A \\"quoted\\" model' in init or 'A "quoted" model' in init
    strings = {
        n.value
        for rel, f in files.items()
        if rel.endswith(".py")
        for n in ast.walk(ast.parse(f.content))
        if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }
    assert 'a label, "please" \\ \n' in strings  # a guard message, exactly
    assert '""" and \\ and \n' in strings  # a default, exactly
    assert not any(actor_doc in s for s in strings if "INJECTED" not in s)


def test_python_names_are_made_safe() -> None:
    files = render(TRICKY)
    # A context named App and an aggregate named Types do not shadow app.py or types.py.
    assert "src/tricky/app.py" in files
    assert "src/tricky/app_context/types_aggregate.py" in files
    shared = files["src/tricky/shared.py"].content
    assert "class Decimal_:" in shared  # a value named Decimal keeps decimal.Decimal usable
    assert "class_: str" in shared and "from_: int" in shared  # keyword field names
    assert 'None_ = "None"' in shared and 'upper_ = "upper"' in shared  # enum members
    # an event named like a runtime class the module imports
    assert "class Rejected_(" in files["src/tricky/custom/policies_aggregate.py"].content


@pytest.mark.parametrize("model", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_example_has_its_service_test(model: Path) -> None:
    assert "tests/test_service.py" in render(model)


#: A model of an external system and a view only: no aggregate, no command to handle.
NO_AGGREGATE = """\
model OnlyView

context Shop {
  external Gateway {
    event Pinged { id: str }
  }
  view Pings {
    key id: str
    on Gateway.Pinged { }
  }
}
"""

#: A creating command whose accepted case the scenario finder cannot find.
NO_ACCEPTED_CASE = """\
model Hard

context Shop {
  aggregate Cart {
    id cart_id: uuid
    state { n: int = 0 }
    command OpenCart creates {
      count: int
      require count * count == 49 else "must be seven"
      emit CartOpened
    }
    published event CartOpened { count: int }
  }
}
"""


@pytest.mark.parametrize(
    ("source", "package", "comment"),
    [
        (NO_AGGREGATE, "only_view", None),
        (NO_ACCEPTED_CASE, "hard", "# - Shop.OpenCart: no accepted case"),
    ],
    ids=["no-aggregate", "no-accepted-case"],
)
def test_a_model_without_a_command_to_handle_still_has_its_service_test(
    source: str, package: str, comment: str | None, tmp_path: Path, mypy_cache: Path
) -> None:
    model = tmp_path / f"{package}.storm"
    model.write_text(source, encoding="utf-8")
    project = generate(model, tmp_path / package)
    service_test = project / "tests" / "test_service.py"
    assert service_test.is_file()
    text = service_test.read_text(encoding="utf-8")
    assert f"from {package}.app import definitions" in text
    if comment is not None:
        assert comment in text
    check_project(project, mypy_cache)
