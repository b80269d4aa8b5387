"""``stormgen diff``: breaking event-schema changes between two model files (B-codes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stormgen.cli import app
from stormgen.lang import parse_model
from stormgen.model.diff import BREAKING_CODES, diff_models

EXAMPLE = Path(__file__).parent.parent / "examples" / "coffee_shop.storm"
runner = CliRunner()

BASE = """\
actor User
enum Size { Small, Large }
value Item { name: str  size: Size = Small }

context Shop {
  aggregate Cart {
    command OpenCart by User creates {
      owner: str
      items: list[Item]
      emit CartOpened
    }
    published event CartOpened {
      owner: str
      items: list[Item]
    }
  }
}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def changes(tmp_path: Path, new: str, old: str = BASE) -> list[tuple[str, str, int, str]]:
    old_path, new_path = write(tmp_path, "old.storm", old), write(tmp_path, "new.storm", new)
    return [
        (
            d.code,
            Path(d.location.file).name if d.location else "",
            d.location.line if d.location else 0,
            d.message,
        )
        for d in diff_models(parse_model(old_path), parse_model(new_path))
    ]


def test_same_model_has_no_breaking_change(tmp_path: Path) -> None:
    assert changes(tmp_path, BASE) == []
    assert diff_models(parse_model(EXAMPLE), parse_model(EXAMPLE)) == []


def test_event_removed_or_renamed(tmp_path: Path) -> None:
    new = BASE.replace("emit CartOpened", "emit CartCreated").replace(
        "published event CartOpened", "published event CartCreated"
    )
    assert changes(tmp_path, new) == [
        (
            "B001",
            "old.storm",
            12,
            "event `Shop.Cart.CartOpened` was removed or renamed: stored events of this type "
            "could no longer be read",
        )
    ]


def test_field_type_changed(tmp_path: Path) -> None:
    new = BASE.replace(
        "    published event CartOpened {\n      owner: str",
        "    published event CartOpened {\n      owner: int",
    )
    assert changes(tmp_path, new) == [
        (
            "B002",
            "new.storm",
            13,
            "field `owner` of event `CartOpened` changed type from `str` to `int`: stored "
            "events hold `str`",
        )
    ]


def test_optional_widening_is_compatible_narrowing_is_not(tmp_path: Path) -> None:
    widened = BASE.replace(
        "      owner: str\n      items: list[Item]\n    }",
        "      owner: str?\n      items: list[Item]\n    }",
    )
    assert changes(tmp_path, widened) == []
    assert [c[0] for c in changes(tmp_path, BASE, old=widened)] == ["B002"]


def test_field_added_without_default(tmp_path: Path) -> None:
    new = BASE.replace(
        "      items: list[Item]\n    }",
        "      items: list[Item]\n      channel: str\n      note: str?\n      tip: int = 0\n    }",
    )
    assert changes(tmp_path, new) == [
        (
            "B003",
            "new.storm",
            15,
            "field `channel` added to event `CartOpened` without a default: stored events "
            "have no value for it",
        )
    ]


def test_field_removed_needs_a_new_version(tmp_path: Path) -> None:
    removed = BASE.replace(
        "    published event CartOpened {\n      owner: str\n", "    published event CartOpened {\n"
    )
    assert changes(tmp_path, removed) == [
        (
            "B004",
            "old.storm",
            13,
            "field `owner` removed from event `CartOpened` without raising the event's version",
        )
    ]
    raised = removed.replace("published event CartOpened {", "published event CartOpened v2 {")
    assert changes(tmp_path, raised) == []


def test_rename_needs_was_and_a_new_version(tmp_path: Path) -> None:
    renamed = BASE.replace(
        "    published event CartOpened {\n      owner: str",
        '    published event CartOpened {\n      customer: str = "" was owner',
    )
    assert [c[:3] for c in changes(tmp_path, renamed)] == [("B005", "new.storm", 13)]
    raised = renamed.replace("published event CartOpened {", "published event CartOpened v2 {")
    assert changes(tmp_path, raised) == []


def test_value_type_and_enum_changes_reach_stored_events(tmp_path: Path) -> None:
    new = BASE.replace("enum Size { Small, Large }", "enum Size { Small }").replace(
        "value Item { name: str  size: Size = Small }",
        "value Item { name: str  size: Size = Small  price: decimal }",
    )
    found = changes(tmp_path, new)
    assert [(c[0], c[1], c[2]) for c in found] == [
        ("B003", "new.storm", 3),
        ("B006", "old.storm", 2),
    ]
    assert "enum member `Size.Large` was removed" in found[1][3]
    assert "field `price` added to value `Item`" in found[0][3]


def test_version_lowered(tmp_path: Path) -> None:
    v3 = BASE.replace("published event CartOpened {", "published event CartOpened v3 {")
    v2 = BASE.replace("published event CartOpened {", "published event CartOpened v2 {")
    assert [c[:3] for c in changes(tmp_path, v2, old=v3)] == [("B007", "new.storm", 12)]


def test_codes_are_documented() -> None:
    """Each code has its section in the reference (whose test checks its example pair)."""
    reference = Path(__file__).parent.parent / "docs" / "reference" / "versioning.md"
    doc = reference.read_text(encoding="utf-8")
    for code in BREAKING_CODES:
        assert f"\n### {code} — " in doc, code


def test_cli_exit_statuses_and_formats(tmp_path: Path) -> None:
    old = write(tmp_path, "old.storm", BASE)
    same = runner.invoke(app, ["diff", str(old), str(old)])
    assert same.exit_code == 0
    assert same.output.strip() == "no breaking changes"
    new = write(
        tmp_path,
        "new.storm",
        BASE.replace(
            "owner: str\n      items: list[Item]\n    }",
            "owner: int\n      items: list[Item]\n    }",
        ),
    )
    text = runner.invoke(app, ["diff", str(old), str(new)])
    assert text.exit_code == 1
    assert text.output.startswith(f"{new}:13:7: error[B002]: field `owner`")
    assert text.output.rstrip().endswith("1 breaking change")
    as_json = runner.invoke(app, ["diff", "--format", "json", str(old), str(new)])
    assert as_json.exit_code == 1
    (finding,) = json.loads(as_json.output)
    assert finding["code"] == "B002" and finding["line"] == 13 and finding["column"] == 7


@pytest.mark.parametrize("which", ["old", "new"])
def test_cli_unreadable_input_exits_2(tmp_path: Path, which: str) -> None:
    good = write(tmp_path, "good.storm", BASE)
    broken = write(tmp_path, "broken.storm", "context {")
    args = [str(broken), str(good)] if which == "old" else [str(good), str(broken)]
    result = runner.invoke(app, ["diff", *args])
    assert result.exit_code == 2
    assert "error[E001]" in result.output
    missing = runner.invoke(app, ["diff", str(good), str(tmp_path / "missing.storm")])
    assert missing.exit_code == 2


PROCESS = """\
actor User
context Shop {
  aggregate Cart {
    command OpenCart by User creates { emit CartOpened }
    published event CartOpened
  }
  process Nudge {
    key cart_id: uuid
    state {
      reminders: int = 0
      note: str = ""
    }
    on CartOpened starts { reminders = 1 }
  }
}
"""


def test_process_state_field_type_changed(tmp_path: Path) -> None:
    new = PROCESS.replace("reminders: int = 0", "reminders: int? = none")
    assert changes(tmp_path, new, old=PROCESS) == []  # `T` -> `T?` reads the old values
    new = PROCESS.replace("note: str", "note: bool").replace('""', "false")
    assert changes(tmp_path, new, old=PROCESS) == [
        (
            "B008",
            "new.storm",
            11,
            "state field `note` of process `Nudge` changed type from `str` to `bool`: its "
            "stored instances hold `str`",
        )
    ]
    # a field removed or added is read without it, or at its default: no break
    new = PROCESS.replace('      note: str = ""\n', '      tag: str = "x"\n')
    assert changes(tmp_path, new, old=PROCESS) == []


def test_process_key_renamed_or_retyped(tmp_path: Path) -> None:
    new = PROCESS.replace("key cart_id: uuid", "key cart: uuid").replace(
        "on CartOpened starts", "on CartOpened by cart_id starts"
    )
    found = changes(tmp_path, new, old=PROCESS)
    assert [c[:3] for c in found] == [("B009", "new.storm", 8)]
    assert "from `cart_id: uuid` to `cart: uuid`" in found[0][3]
