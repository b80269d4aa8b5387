"""The E106 check and the HTTP routes compute an element's path segment the same way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stormgen.checks import names
from stormgen.lang import parse_model
from stormgen.model.nodes import Model
from stormgen.runtime.http.naming import kebab as route_segment

ROOT = Path(__file__).parent.parent.parent
FILES = sorted([*ROOT.glob("examples/**/*.storm"), *ROOT.glob("tests/**/*.storm")])


def _names(model: Model) -> Iterator[str]:
    for context in model.contexts:
        yield context.name
        for aggregate in context.aggregates:
            yield aggregate.name
            yield from (c.name for c in aggregate.commands)
        for external in context.externals:
            yield external.name
            yield from (c.name for c in external.commands)
        yield from (v.name for v in context.views)


def _parsed(path: Path) -> Model | None:
    try:
        return parse_model(path)
    except Exception:  # an invalid model on purpose (tests/invalid): no names to compare
        return None


#: Every model file that parses, with its model.
MODELS = [(path, model) for path in FILES if (model := _parsed(path)) is not None]


@pytest.mark.parametrize(
    ("path", "model"), MODELS, ids=[str(p.relative_to(ROOT)) for p, _ in MODELS]
)
def test_check_and_routes_agree_on_every_name(path: Path, model: Model) -> None:
    assert len(MODELS) > 20  # the examples and the test models, not a handful
    for name in _names(model):
        assert names.kebab(name) == route_segment(name), name


@pytest.mark.parametrize("name", ["Views", "VIEWS", "ViewS", "External", "EXTERNAL", "Ex_ternal"])
def test_only_a_reserved_word_in_lower_case_is_served_at_a_reserved_segment(name: str) -> None:
    # E106 looks the segment up only for such names (the runtime is imported lazily).
    reserved = route_segment(name) in names.RESERVED_SEGMENTS
    assert not reserved or name.lower() in names.RESERVED_SEGMENTS


@pytest.mark.parametrize(
    ("name", "segment"),
    [("PlaceOrder", "place-order"), ("Order_Line", "order-line"), ("HTTPRequest", "http-request")],
)
def test_underscores_become_hyphens_in_the_check_too(name: str, segment: str) -> None:
    assert names.kebab(name) == segment == route_segment(name)
