"""Find the grammar and templates, in a checkout and in an installed wheel alike."""

from __future__ import annotations

from functools import cache
from importlib import resources
from pathlib import Path


@cache
def resource_dir(name: str) -> Path:
    """Return the folder ``grammar`` or ``templates``.

    A wheel ships them as ``stormgen/_resources/<name>``; a checkout (or an editable
    install) has them at the repository root, two levels above ``src/stormgen``.
    """
    packaged = resources.files("stormgen") / "_resources" / name
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"stormgen's {name} folder is missing from this installation")


def grammar_dir() -> Path:
    return resource_dir("grammar")


def templates_dir() -> Path:
    return resource_dir("templates")
