"""Diagnostics shared by every stage: one type for errors, warnings and infos."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Location:
    """A place in a source file; lines and columns count from 1."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class Level(enum.Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding: a code such as ``E102``, where it stands and how to fix it."""

    code: str
    level: Level
    message: str
    location: Location | None = None
    help: str | None = None

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "code": self.code,
            "level": self.level.value,
            "message": self.message,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "help": self.help,
        }


class StormgenError(Exception):
    """Base of every error stormgen raises on purpose; the CLI prints it as one sentence."""

    exit_code = 2


class ModelError(StormgenError):
    """A model could not be loaded: carries the diagnostics (E001, E002) that say why."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        first = diagnostics[0] if diagnostics else None
        super().__init__(first.message if first else "the model could not be loaded")
