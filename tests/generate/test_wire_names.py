"""Model fields named like Python keywords (`from`, `class`, `field`) keep their names in JSON."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from stormgen.runtime import from_data, info, to_data

from ._helpers import check_project, generate

WIRE = Path(__file__).with_name("wire_names.storm")


def test_renamed_fields_make_a_clean_project(tmp_path: Path, mypy_cache: Path) -> None:
    project = generate(WIRE, tmp_path / "wire")
    check_project(project, mypy_cache)
    trip = (project / "src/wire/travel/trip.py").read_text()
    assert 'from_: str = field(metadata={"name": "from"})' in trip
    assert 'class_: str = field(default="economy", metadata={"name": "class"})' in trip
    # pii names the data's field, so the model's name
    assert 'pii=("from",)' in trip


def test_generated_classes_encode_with_the_model_names(tmp_path: Path) -> None:
    project = generate(WIRE, tmp_path / "wire")
    sys.path.insert(0, str(project / "src"))
    try:
        check_generated_classes()
    finally:
        sys.path.remove(str(project / "src"))
        for name in [m for m in sys.modules if m == "wire" or m.startswith("wire.")]:
            del sys.modules[name]


def check_generated_classes() -> None:
    trip = importlib.import_module("wire.travel.trip")
    shared = importlib.import_module("wire.shared")
    views = importlib.import_module("wire.travel.views")
    data = {
        "trip_id": "6f1c1b7e-2f0c-4a4e-9d0b-6c1f0e2a9b11",
        "from": "AMS",
        "class": "first",
        "field": "1.5",
        "legs": [{"from": "CDG"}],
    }
    booked = from_data(trip.Booked, data)
    assert booked.from_ == "AMS" and booked.legs == (shared.Leg(from_="CDG"),)
    assert to_data(booked) == {**data, "legs": [{"from": "CDG", "class": "economy"}]}
    assert info(trip.Booked).pii == {"from"}
    row = views.TripsRow(trip_id=booked.trip_id, from_="AMS")
    assert set(to_data(row)) == {"trip_id", "from", "class", "field"}
    assert set(views.TripsBase.sql_columns()) == {"class", "field"}  # pii and key left out
