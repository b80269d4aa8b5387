"""The fake adapter of an external system answers with any declared event.

An answer's field the command cannot fill gets a placeholder of its type, whatever the
type: a value (built from its fields' defaults and placeholders, nested), a list, an
enum, an optional. A model that validates clean generates (this one stopped `generate`
with "the fake adapter cannot invent a value of type 'Quote'" before), passes ruff and
mypy --strict, and its fake answers through a real application on SQLite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from stormgen.checks import check
from stormgen.lang import parse_model

from ._helpers import check_project, generate, render, run

MODEL = """\
model Fakes
actor Clerk
context Shop {
  enum Tier { Basic, Gold }
  value Money { amount: decimal, currency: str }
  value Quote { price: Money, tier: Tier, lines: list[Money], note: str?, valid: bool = true }
  external Pricing {
    command Ask { sku: str }
    event Quoted { sku: str, quote: Quote, alternatives: list[Quote], best: Quote? }
    event Refused { sku: str, reason: str }
  }
  aggregate Item {
    id sku: str
    state { asked: bool = false }
    command Request by Clerk creates { emit Requested }
    event Requested { apply { asked = true } }
  }
  policy AskPrice {
    when Requested
    then Ask
  }
}
"""

RUN = """\
from stormgen.runtime import Application

from fakes.app import definitions
from fakes.shop.item import Request

with Application.open("sqlite:///" + {db!r}, **definitions()) as app:
    app.handle(Request(sku="tea"))
    app.run_consumers()
    answer = app.envelope(app.store.read_stream("Shop.Pricing")[-1]).event
    print(type(answer).__name__, answer.sku, answer.quote, answer.alternatives, answer.best)
"""


def test_a_fake_invents_a_value_of_any_type(tmp_path: Path, mypy_cache: Path) -> None:
    path = tmp_path / "fakes.storm"
    path.write_text(MODEL)
    assert [d for d in check(parse_model(path)) if d.code.startswith("E")] == []
    pricing = render(path)["src/fakes/shop/pricing.py"].content
    assert (
        'quote=Quote(price=Money(amount=Decimal("0"), currency=""), tier=Tier.Basic, lines=())'
        in pricing
    )
    assert "alternatives=()" in pricing and "best=None" in pricing
    project = generate(path, tmp_path / "fakes")
    check_project(project, mypy_cache)
    script = project / "run.py"
    script.write_text(textwrap.dedent(RUN.format(db=str(tmp_path / "events.db"))))
    out = run([sys.executable, str(script)], project, env={"PYTHONPATH": str(project / "src")})
    assert out.strip() == (
        "Quoted tea Quote(price=Money(amount=Decimal('0'), currency=''), tier=<Tier.Basic: "
        "'Basic'>, lines=(), note=None, valid=True) () None"
    )


def test_a_value_that_contains_itself_is_a_located_error(tmp_path: Path) -> None:
    path = tmp_path / "fakes.storm"
    path.write_text(
        MODEL.replace(
            "value Money { amount: decimal, currency: str }",
            "value Money { amount: decimal, currency: str, change: Money }",
        )
    )
    done = subprocess.run(
        [sys.executable, "-m", "stormgen", "generate", str(path), "-o", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    # validate's E108, at the field that closes the cycle (generate checks first)
    assert f"{path}:5:49: error[E108]: value `Money` contains itself" in done.stderr + done.stdout
