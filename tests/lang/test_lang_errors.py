"""Every way a model can fail to load gives a located E001/E002, never an exception."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from stormgen.diagnostics import Diagnostic, Level, Location, ModelError
from stormgen.lang import parse_model

Errors = Callable[..., list[Diagnostic]]


def at(line: int, column: int, file: str = "model.storm") -> Location:
    return Location(file, line, column)


def test_syntax_error_names_the_expected_tokens_and_what_was_found(errors: Errors) -> None:
    (d,) = errors("context A {\n  aggregat B {}\n}\n")
    assert (d.code, d.level, d.location) == ("E001", Level.ERROR, at(2, 3))
    assert d.message == (
        "syntax error: expected one of 'actor', 'value', 'enum', 'aggregate', 'external', "
        "'policy', 'view', 'process', 'scenario', 'hotspot' or '}', found 'aggregat'"
    )
    assert d.help == "did you mean 'aggregate'?"


def test_a_misspelt_top_level_keyword(errors: Errors) -> None:
    (d,) = errors("# header\ncontxt A {}\n")
    assert d.location == at(2, 1)
    assert d.message == (
        "syntax error: expected one of 'model', 'import', 'actor', 'value', 'enum', "
        "'context', 'map', 'scenario' or end of file, found 'contxt'"
    )
    assert d.help == "did you mean 'context'?"


def test_no_help_when_nothing_is_close(errors: Errors) -> None:
    (d,) = errors("context A { zzz }")
    assert d.help is None


def test_a_field_without_its_colon(errors: Errors) -> None:
    (d,) = errors("context A { aggregate B { command C {\n    x str\n} } }")
    assert d.location == at(2, 5)
    assert d.message == (
        "syntax error: expected one of a field (`name: Type`), 'require', 'emit', "
        "'hotspot', 'let' or '}', found 'x'"
    )


def test_a_missing_operand(errors: Errors) -> None:
    (d,) = errors('context A { aggregate B { command C {\n  require a > else "m"\n} } }')
    assert d.location == at(2, 15)
    assert d.message == (
        "syntax error: expected one of an expression, '[', '(', '-' or 'not', found 'else'"
    )


def test_a_keyword_cannot_name_an_element(errors: Errors) -> None:
    (d,) = errors("context state {}")
    assert d.location == at(1, 9)
    assert d.message == "syntax error: expected a name, found 'state'"


def test_a_default_must_be_a_literal(errors: Errors) -> None:
    (d,) = errors("value V { at: datetime = now() }")
    assert d.location == at(1, 29)
    assert "found '('" in d.message


def test_unexpected_end_of_file_is_reported_at_the_last_token(errors: Errors) -> None:
    (d,) = errors("context A {\n  aggregate B {\n    command C {\n      x: str  # note\n\n\n")
    assert d.location == at(4, 10)  # `str`, not the empty lines after it
    assert d.message.startswith("unexpected end of file: expected one of ")
    assert d.message.endswith("'require', 'emit', 'hotspot', 'let' or '}'")


def test_unexpected_end_of_file_inside_a_string(errors: Errors) -> None:
    (d,) = errors('context A "unterminated\n')
    assert d.code == "E001" and d.location == at(1, 11)


def test_view_without_key_and_second_id_are_located(errors: Errors) -> None:
    diags = errors(
        "context A {\n"
        "  aggregate B {\n    id b: uuid\n    id c: uuid\n    snapshot every 3\n"
        "    snapshot every 4\n  }\n"
        "  view V {\n    on X\n  }\n}\n"
    )
    assert [(d.code, d.location, d.message) for d in diags] == [
        ("E001", at(4, 5), "aggregate B has a second `id` line"),
        ("E001", at(6, 5), "aggregate B has a second `snapshot` line"),
        ("E001", at(8, 3), "view V has no `key` line (e.g. `key order_id: uuid`)"),
    ]


def test_missing_root_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError) as info:
        parse_model("nowhere.storm")
    (d,) = info.value.diagnostics
    assert (d.code, d.location) == ("E002", None)
    assert d.message == "cannot read file nowhere.storm: no such file"
    assert info.value.exit_code == 2


def test_a_folder_is_not_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("dir.storm").mkdir()
    with pytest.raises(ModelError) as info:
        parse_model("dir.storm")
    assert [d.message for d in info.value.diagnostics] == [
        "cannot read file dir.storm: it is a folder"
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root can read any file")
def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("locked.storm").write_text("context A {}")
    Path("locked.storm").chmod(0)
    with pytest.raises(ModelError) as info:
        parse_model("locked.storm")
    assert [d.message for d in info.value.diagnostics] == [
        "cannot read file locked.storm: permission denied"
    ]


def test_binary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("blob.storm").write_bytes(b"context A {}\nabc\x00\x01\x02")
    with pytest.raises(ModelError) as info:
        parse_model("blob.storm")
    (d,) = info.value.diagnostics
    assert (d.code, d.location) == ("E001", Location("blob.storm", 2, 4))
    assert d.message == "blob.storm is a binary file, not a .storm text (NUL byte)"


def test_invalid_utf8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("latin.storm").write_bytes("context Café {}\n# é\n".encode("latin-1"))
    with pytest.raises(ModelError) as info:
        parse_model("latin.storm")
    (d,) = info.value.diagnostics
    assert (d.code, d.location) == ("E001", Location("latin.storm", 1, 12))
    assert d.message == "latin.storm is not valid UTF-8 text (byte 0xe9)"


def test_utf8_bom_and_crlf_are_fine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("win.storm").write_bytes(b"\xef\xbb\xbfcontext A {\r\n  view V { key k: uuid }\r\n}\r\n")
    view = parse_model("win.storm").contexts[0].views[0]
    assert view.loc == Location("win.storm", 2, 3)


@pytest.mark.parametrize("depth", [5000])
def test_deep_nesting_is_reported_not_crashed(errors: Errors, depth: int) -> None:
    text = (
        "context A {\n policy P {\n  when E if " + "(" * depth + "x" + ")" * depth + " then X\n}}"
    )
    (d,) = errors(text)
    assert d.code == "E001" and d.message == "nesting too deep for the parser"
    assert d.location == at(3, 13 + depth - 1)  # the innermost `(`


def test_deep_prefix_chain_is_reported_not_crashed(errors: Errors) -> None:
    text = "context A {\n policy P {\n  when E if " + "-" * 5000 + "x then X\n}}"
    (d,) = errors(text)
    assert d.code == "E001" and d.message == "nesting too deep for the parser"
    assert d.location == at(3, 13)  # where the run of `-` starts


def test_reasonable_nesting_parses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("m.storm").write_text(
        "context A { policy P { when E if " + "(" * 300 + "x" + ")" * 300 + " then X } }"
    )
    assert parse_model("m.storm").contexts[0].policies[0].condition is not None


def test_a_huge_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    body = "".join(f"  value V{i} {{ a: str }}\n" for i in range(20_000))
    Path("huge.storm").write_text("context A {\n" + body + "}\n")
    values = parse_model("huge.storm").contexts[0].values
    assert len(values) == 20_000 and values[-1].loc == Location("huge.storm", 20_001, 3)
