"""``stormgen validate``: formats and exit statuses, through CliRunner and one real process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from stormgen.cli import app

ROOT = Path(__file__).parent.parent.parent
EXAMPLE = ROOT / "examples" / "coffee_shop.storm"
INVALID = ROOT / "tests" / "invalid"
runner = CliRunner()


def test_coffee_shop_is_valid_with_warnings() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.rstrip().endswith("0 errors, 1 warning, 2 infos")
    assert f"{EXAMPLE}:51:7: info[I001]: open hotspot: Can a paid order be refunded?" in (
        result.output
    )


def test_strict_fails_on_any_finding() -> None:
    result = runner.invoke(app, ["validate", "--strict", str(EXAMPLE)])
    assert result.exit_code == 1


def test_text_format_shows_source_caret_and_help() -> None:
    case = INVALID / "E102_unknown_event.storm"
    result = runner.invoke(app, ["validate", str(case)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == (f"{case}:5:45: error[E102]: unknown event `CartOpend` in aggregate `Cart`")
    assert lines[1] == " 5 |     command OpenCart by User creates { emit CartOpend }"
    assert lines[2] == "   | " + " " * 44 + "^"
    assert lines[3] == " help: did you mean `CartOpened`?"
    assert lines[-1] == "1 error, 0 warnings, 0 infos"


def test_json_format() -> None:
    case = INVALID / "E102_unknown_event.storm"
    result = runner.invoke(app, ["validate", "--format", "json", str(case)])
    assert result.exit_code == 1
    assert json.loads(result.output) == [
        {
            "code": "E102",
            "level": "error",
            "message": "unknown event `CartOpend` in aggregate `Cart`",
            "file": str(case),
            "line": 5,
            "column": 45,
            "help": "did you mean `CartOpened`?",
        }
    ]


def test_warnings_only_exit_zero() -> None:
    result = runner.invoke(app, ["validate", str(INVALID / "W502_unreachable_command.storm")])
    assert result.exit_code == 0
    assert "warning[W502]" in result.output


def test_clean_model(tmp_path: Path) -> None:
    clean = tmp_path / "clean.storm"
    clean.write_text(
        "actor User\ncontext Shop {\n  aggregate Cart {\n"
        "    command OpenCart by User creates { emit CartOpened }\n"
        "    published event CartOpened {}\n  }\n}\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["validate", str(clean)])
    assert result.exit_code == 0
    assert result.output.strip() == "no findings"
    result = runner.invoke(app, ["validate", "--format", "json", str(clean)])
    assert json.loads(result.output) == []


def test_syntax_error_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.storm"
    broken.write_text("context Shop {\n  aggregate {\n}\n", encoding="utf-8")
    result = runner.invoke(app, ["validate", "--format", "json", str(broken)])
    assert result.exit_code == 2
    (finding,) = json.loads(result.output)
    assert finding["code"] == "E001"
    assert finding["line"] == 2


def test_missing_file_exits_2_with_one_sentence(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.storm")])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == f"error: {tmp_path / 'nope.storm'}: no such file"


def test_real_process() -> None:
    case = INVALID / "E205_no_creates.storm"
    done = subprocess.run(
        [sys.executable, "-m", "stormgen", "validate", str(case)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert f"{case}:4:3: error[E205]: aggregate `Cart` has no `creates` command" in done.stdout
    assert "Traceback" not in done.stderr
    ok = subprocess.run(
        [sys.executable, "-m", "stormgen", "validate", str(EXAMPLE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr


def test_missing_import_exits_2(tmp_path: Path) -> None:
    root = tmp_path / "root.storm"
    root.write_text('import "nowhere.storm"\nactor User\n', encoding="utf-8")
    result = runner.invoke(app, ["validate", str(root)])
    assert result.exit_code == 2
    assert "error[E002]" in result.output
    assert result.output.rstrip().endswith("1 error, 0 warnings, 0 infos")
