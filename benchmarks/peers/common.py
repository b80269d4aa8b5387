"""What the hand-written contenders of bench_service.py share: the request, the routes.

Both serve the coffee shop's order flow over the same three routes the generated
service offers for it, validated the way a user would validate them with FastAPI:

- ``POST /ordering/order/place-order`` (a ``PlaceOrder`` body: customer, drinks, total;
  at least one drink, a positive total) answers ``201 {"id": ...}``;
- ``GET /display/views/pickup/{ticket_id}`` answers the pickup row or ``404``;
- ``GET /health`` answers ``{"status": "ok"}``.

Each contender keeps its pickup display in a SQLite table ``pickup`` (``key`` the ticket id,
which is the order id, as in the generated service) that the benchmark watches to see
when an order's chain is complete.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool


class Size(StrEnum):
    Small = "Small"
    Medium = "Medium"
    Large = "Large"


class Drink(BaseModel):
    name: str
    size: Size = Size.Medium
    price: Decimal


class PlaceOrder(BaseModel):
    customer: str
    drinks: list[Drink]
    total: Decimal


def rejection(order: PlaceOrder) -> str | None:
    """The PlaceOrder rules of the model, as a user would write them."""
    if not order.drinks:
        return "an order needs at least one drink"
    if order.total <= 0:
        return "the total must be positive"
    return None


def drinks_json(order: PlaceOrder) -> list[dict[str, str]]:
    return [{"name": d.name, "size": d.size.value, "price": str(d.price)} for d in order.drinks]


def make_app(
    place: Callable[[PlaceOrder], str], pickup: Callable[[str], dict[str, Any] | None]
) -> FastAPI:
    """The three routes around a contender's ``place`` and ``pickup`` (both blocking)."""
    app = FastAPI()

    @app.post("/ordering/order/place-order", status_code=201)
    async def place_order(order: PlaceOrder) -> dict[str, str]:
        problem = rejection(order)
        if problem:
            raise HTTPException(status_code=409, detail=problem)
        return {"id": await run_in_threadpool(place, order)}

    @app.get("/display/views/pickup/{ticket_id}")
    async def pickup_row(ticket_id: str) -> JSONResponse:
        row = await run_in_threadpool(pickup, ticket_id)
        if row is None:
            return JSONResponse({"detail": "no such row"}, status_code=404)
        return JSONResponse(row)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


def arguments(doc: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("folder", help="where the SQLite files go")
    parser.add_argument("--port", type=int, required=True)
    return parser.parse_args()


def serve(app: FastAPI, port: int) -> None:
    """uvicorn with the settings of ``stormgen run`` (h11, asyncio, no access log)."""
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
