"""``stormgen init NAME``: start a new model in a folder of its own."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from stormgen.cli._console import console, err_console
from stormgen.model.naming import snake_case


def model_name(name: str) -> str:
    """``my-shop`` → ``MyShop``; ``coffee_shop`` → ``CoffeeShop``."""
    parts = [p for p in re.split(r"[^A-Za-z0-9]+|_", name) if p]
    pascal = "".join(p[:1].upper() + p[1:] for p in parts) or "Model"
    return "M" + pascal if pascal[0].isdigit() else pascal


def file_stem(name: str) -> str:
    """``MyShop`` → ``my_shop``: the starter file's name."""
    return snake_case(model_name(name))


def starter_model(name: str) -> str:
    """A small but complete model that validates clean, to edit into one's own."""
    return f"""\
# {name}: a starter model. Edit it into your own board, then run
#   stormgen validate {file_stem(name)}.storm
# The language is taught in stormgen's reference (docs/reference/README.md).
model {name} "Describe your domain in one sentence"

actor Customer "Someone who buys"

context Sales "Takes orders" {{

  aggregate Order "A customer's order" {{
    state {{
      item: str
      quantity: int = 1
    }}

    command PlaceOrder by Customer creates "Order an item" {{
      item: str
      quantity: int
      require quantity > 0 else "order at least one"
      emit OrderPlaced
    }}

    # Published: other contexts may react to it (see the map at the end).
    published event OrderPlaced {{
      item: str
      quantity: int
    }}
  }}

  view Orders "Every order placed" {{
    key order_id: uuid
    item: str
    quantity: int = 0
    on OrderPlaced
  }}
}}

context Shipping "Sends what was ordered" {{

  aggregate Parcel "What leaves the warehouse for one order" {{
    state {{
      item: str
      shipped: bool = false
    }}

    command PrepareParcel creates {{
      item: str
      emit ParcelPrepared
    }}

    command ShipParcel {{
      require not shipped else "the parcel has already left"
      emit ParcelShipped
    }}

    event ParcelPrepared {{
      item: str
    }}

    published event ParcelShipped {{
      apply {{ shipped = true }}
    }}
  }}

  external Carrier "The delivery company" {{
    command BookPickup {{ parcel_id: uuid }}
    event PickedUp {{ parcel_id: uuid }}
  }}

  # One parcel per order: its id is the order's id, so a redelivered event
  # cannot prepare two parcels.
  policy PrepareParcelForOrder "Every order becomes a parcel" {{
    when Sales.OrderPlaced
    then PrepareParcel {{ parcel_id = order_id }}
  }}

  policy BookPickupWhenPrepared {{
    when ParcelPrepared
    then Carrier.BookPickup
  }}

  policy ShipWhenPickedUp {{
    when Carrier.PickedUp
    then ShipParcel
  }}

  view Parcels "Parcels and whether they have left" {{
    key parcel_id: uuid
    item: str
    shipped: bool = false
    on ParcelPrepared
    on ParcelShipped {{ shipped = true }}
  }}
}}

map {{
  Sales [OHS, PL] -> [CF] Shipping
}}
"""


def starter_readme(name: str) -> str:
    stem = file_stem(name)
    return f"""\
# {name}

An Event Storming model for stormgen, started with `stormgen init`.

- `{stem}.storm` is the board: contexts, aggregates, commands, events, policies,
  views and the context map. Edit it into your own domain.
- `stormgen validate {stem}.storm` checks it and says where anything is wrong.
- `stormgen board {stem}.storm` draws it as an Event Storming board (HTML).
- `stormgen run {stem}.storm` serves it as a running event-sourced service.
"""


def init(
    name: Annotated[str, typer.Argument(help="The folder to create (and the model's name).")],
) -> None:
    """Start a new model: a folder with a small, valid .storm file and a README."""
    folder = Path(name)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        err_console.print(
            f"error: {folder} already exists and is not an empty folder; "
            "choose another name or remove it first",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(1)
    title = model_name(folder.name)
    stem = file_stem(folder.name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.storm").write_text(starter_model(title), encoding="utf-8")
        (folder / "README.md").write_text(starter_readme(title), encoding="utf-8")
    except OSError as exc:
        err_console.print(
            f"error: cannot create {folder}: {exc.strerror or exc}", markup=False, highlight=False
        )
        raise typer.Exit(1) from None
    console.print(
        f"created {folder / (stem + '.storm')} and {folder / 'README.md'}; "
        f"next: stormgen validate {folder / (stem + '.storm')}",
        markup=False,
    )
