"""`import "path"`: relative to the importing file, each file once, cycles allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormgen.diagnostics import Location, ModelError
from stormgen.lang import parse_model


def write(path: str, text: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf-8")


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def test_imports_are_relative_to_the_importing_file() -> None:
    write("board/main.storm", 'model Main\nimport "contexts/a.storm"\ncontext Root {}\n')
    write("board/contexts/a.storm", 'import "../shared/types.storm"\ncontext A {}\n')
    write("board/shared/types.storm", "enum Size { S, M }\nactor Customer\n")
    m = parse_model("board/main.storm")
    assert [f.path for f in m.files] == [
        "board/main.storm",
        "board/contexts/a.storm",
        "board/shared/types.storm",
    ]
    assert [c.name for c in m.contexts] == ["Root", "A"]
    assert [e.name for e in m.enums] == ["Size"]
    assert m.actors[0].loc == Location("board/shared/types.storm", 2, 1)
    assert m.contexts[1].loc == Location("board/contexts/a.storm", 2, 1)


def test_files_are_read_in_import_order_depth_first() -> None:
    write("main.storm", 'import "a.storm"\nimport "b.storm"\n')
    write("a.storm", 'import "c.storm"\ncontext A {}\n')
    write("b.storm", "context B {}\n")
    write("c.storm", "context C {}\n")
    m = parse_model("main.storm")
    assert [f.path for f in m.files] == ["main.storm", "a.storm", "c.storm", "b.storm"]
    assert [c.name for c in m.contexts] == ["A", "C", "B"]


def test_cycles_are_allowed_and_each_file_is_read_once() -> None:
    write("a.storm", 'import "b.storm"\nimport "./a.storm"\ncontext A {}\n')
    write("b.storm", 'import "a.storm"\nimport "sub/../b.storm"\ncontext B {}\n')
    m = parse_model("a.storm")
    assert [f.path for f in m.files] == ["a.storm", "b.storm"]
    assert [c.name for c in m.contexts] == ["A", "B"]


def test_the_root_header_names_the_model_and_imported_headers_are_ignored() -> None:
    write("shop.storm", 'import "part.storm"\n')
    write("part.storm", 'model Part "ignored"\ncontext P {}\n')
    m = parse_model("shop.storm")
    assert (m.name, m.name_declared, m.description) == ("Shop", False, None)


def test_the_same_context_in_two_files_is_kept_twice() -> None:
    # Not merged silently: the checks report the later one (E101).
    write("a.storm", 'import "b.storm"\ncontext X {}\n')
    write("b.storm", "context X { actor Y }\n")
    m = parse_model("a.storm")
    assert [(c.name, c.loc.file) for c in m.contexts] == [("X", "a.storm"), ("X", "b.storm")]


def test_a_missing_import_is_e002_at_the_import_statement() -> None:
    write("main.storm", 'context A {}\n\n  import "gone.storm"\n')
    with pytest.raises(ModelError) as info:
        parse_model("main.storm")
    (d,) = info.value.diagnostics
    assert (d.code, d.location) == ("E002", Location("main.storm", 3, 3))
    assert d.message == "cannot read imported file gone.storm: no such file"


def test_errors_of_every_file_are_reported_together() -> None:
    write("main.storm", 'import "bad.storm"\nimport "missing.storm"\nimport "worse.storm"\n')
    write("bad.storm", "context B { oops }\n")
    write("worse.storm", "context {}\n")
    with pytest.raises(ModelError) as info:
        parse_model("main.storm")
    got = [(d.code, str(d.location)) for d in info.value.diagnostics]
    assert got == [
        ("E001", "bad.storm:1:13"),
        ("E002", "main.storm:2:1"),
        ("E001", "worse.storm:1:9"),
    ]


def test_an_imported_binary_file_is_e001_in_that_file() -> None:
    write("main.storm", 'import "blob.storm"\n')
    Path("blob.storm").write_bytes(b"\x00\x01")
    with pytest.raises(ModelError) as info:
        parse_model("main.storm")
    (d,) = info.value.diagnostics
    assert (d.code, d.location) == ("E001", Location("blob.storm", 1, 1))
