"""The `stormgen` command itself: --version, shell completion, the order of its commands,
usage errors and help texts that cite only the repository's own docs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import stormgen

SCRIPT = Path(sys.executable).with_name("stormgen")
COMMANDS = [
    "init", "validate", "test", "graph", "board", "generate", "run", "up",
    "events", "state", "replay", "fork", "merge", "info", "forget", "diff",
]  # fmt: skip


def stormgen_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, in a process of its own."""
    return _run([str(SCRIPT), *args], env)


def stormgen_in_bash(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """The console script typed at a bash prompt: `--show-completion` and
    `--install-completion` take the shell from the processes above them (shellingham),
    and pytest may run under another shell or none at all (a background job, CI)."""
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not on the PATH")
    # `; exit $?` keeps bash alive as the script's parent (a lone command is exec'ed)
    return _run([bash, "-c", '"$0" "$@"; exit $?', str(SCRIPT), *args], env)


def _run(command: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.is_file():
        pytest.skip("the stormgen console script is not installed next to this Python")
    settings = {k: v for k, v in os.environ.items() if not k.startswith("STORMGEN_")}
    settings.update(COLUMNS="200", **env)
    return subprocess.run(
        command, capture_output=True, text=True, env=settings, timeout=60, check=False
    )


def test_version() -> None:
    result = stormgen_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"stormgen {stormgen.__version__}\n"


def test_commands_are_listed_in_the_order_a_user_meets_them() -> None:
    result = stormgen_cli("--help")
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^│ ([a-z]+) ", result.stdout, flags=re.MULTILINE)
    assert [name for name in listed if name in COMMANDS] == COMMANDS


def test_shell_completion_is_offered_and_completes() -> None:
    shown = stormgen_in_bash("--show-completion")
    assert shown.returncode == 0, shown.stderr
    assert "_STORMGEN_COMPLETE=complete_bash" in shown.stdout
    assert "complete -o default -F _stormgen_completion stormgen" in shown.stdout
    completed = stormgen_cli(
        _STORMGEN_COMPLETE="complete_bash", COMP_WORDS="stormgen ge", COMP_CWORD="1"
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["generate"]


def test_install_completion_writes_the_script(tmp_path: Path) -> None:
    result = stormgen_in_bash("--install-completion", HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    script = tmp_path / ".bash_completions" / "stormgen.sh"
    assert "_stormgen_completion" in script.read_text()
    assert "stormgen.sh" in (tmp_path / ".bashrc").read_text()


@pytest.mark.parametrize("args", [("validate", "--bogus"), ("nope",), ("run",)])
def test_usage_errors_are_exit_2_not_internal_errors(args: tuple[str, ...]) -> None:
    result = stormgen_cli(*args)
    assert result.returncode == 2, result.stderr
    assert "internal error" not in result.stderr
    assert "Usage: stormgen" in result.stderr


def test_help_texts_cite_only_the_repository() -> None:
    outside = re.compile(r"service\.md|language\.md|shared/spec|§")
    for command in ("", *COMMANDS):
        result = stormgen_cli(*([command] if command else []), "--help")
        assert result.returncode == 0, (command, result.stderr)
        assert not outside.search(result.stdout), (command, outside.findall(result.stdout))
