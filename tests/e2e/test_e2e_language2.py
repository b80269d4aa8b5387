"""Language 2 end to end, over real HTTP: a `stormgen run` server on a SQLite file.

A line removed from a basket with a list comprehension is gone from the state, the
events and the view; a conditional and a generator sum compute the event's fields;
a command whose expression cannot be computed (a division by zero) is a 409 with one
sentence, and nothing is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import REPO, STORMGEN, Server

SOURCE = REPO / "tests" / "generate" / "language2.storm"
TOKENS = "k1=Clerk,o1=operator"
CLERK = {"Authorization": "Bearer k1"}
OPERATOR = {"Authorization": "Bearer o1"}


class Language2Server(Server):
    """The server of tests/generate/language2.storm (Split lets a zero through)."""

    model: Path

    def command(self) -> list[str]:
        options = ["--port", str(self.port), "--store", self.store, *self.args]
        return [*STORMGEN, "run", str(self.model), *options]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Language2Server]:
    workdir = tmp_path_factory.mktemp("language2")
    model = workdir / "language2.storm"
    model.write_text(
        SOURCE.read_text()
        .replace('require note != none else "a basket to split needs a note"', "")
        .replace('label = upper(note) if len(note) > 0 else "none"', 'label = "x"')
        .replace("when BasketSplit if first_sku != none and len(skus) > 1", "when BasketSplit")
        .replace("then Tag { label = lower(first_sku) }", 'then Tag { label = "split" }')
    )
    running = Language2Server(workdir, f"sqlite:///{workdir / 'events.db'}", TOKENS)
    running.model = model
    running.start()
    yield running
    running.stop()


def test_removing_a_line_takes_it_out_of_the_list(server: Language2Server) -> None:
    with server.client() as c:
        opened = c.post("/shop/basket/open", json={}, headers=CLERK)
        assert opened.status_code == 201, opened.text
        ident = opened.json()["id"]
        add = f"/shop/basket/{ident}/add-line"
        for sku, price, qty in (("ABC-1", "2.499", 2), ("XYZ-2", "10", 9)):
            response = c.post(add, json={"sku": sku, "price": price, "qty": qty}, headers=CLERK)
            assert response.status_code == 200, response.text
        added = response.json()["events"][0]["data"]
        # round(abs(2.499), 2) * 2 + 10.00 * 9: a generator sum over the new list
        assert added["total"] == "95.00"
        assert added["band"] == "High"  # 2 + 9 items: the conditional's first branch
        refused = c.post(add, json={"sku": "abc", "price": "1", "qty": 1}, headers=CLERK)
        assert refused.status_code == 409
        assert refused.json()["message"] == "a sku looks like ABC-123"

        removed = c.post(f"/shop/basket/{ident}/remove-line", json={"sku": "ABC-1"}, headers=CLERK)
        assert removed.status_code == 200, removed.text
        data = removed.json()["events"][0]["data"]
        assert [line["sku"] for line in data["lines"]] == ["XYZ-2"]
        assert data["total"] == "90.00"
        state = c.get(f"/shop/basket/{ident}", headers=CLERK).json()["state"]
        assert [line["sku"] for line in state["lines"]] == ["XYZ-2"]
        again = c.post(f"/shop/basket/{ident}/remove-line", json={"sku": "ABC-1"}, headers=CLERK)
        assert again.status_code == 409
        assert again.json()["message"] == "not in the basket"


def test_a_division_by_zero_is_a_409_and_writes_nothing(server: Language2Server) -> None:
    with server.client() as c:
        ident = c.post("/shop/basket/open", json={}, headers=CLERK).json()["id"]
        split = c.post(f"/shop/basket/{ident}/split", json={"ways": 0}, headers=CLERK)
        assert split.status_code == 409, split.text
        body = split.json()
        assert body["error"] == "rejected"
        assert body["message"] == (
            "Split cannot be computed: an undefined operation (such as 0 / 0)"
        )
        history = c.get(f"/shop/basket/{ident}/events", headers=OPERATOR).json()["events"]
        assert len(history) == 1, history  # Opened only
        assert c.post(f"/shop/basket/{ident}/split", json={"ways": 2}, headers=CLERK).is_success
