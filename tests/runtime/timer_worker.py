"""A service process for the two-process timer test: fires the due timers of the
coffee Checkout on the store `argv[1]`, logging each timer handler run to `argv[2]`,
until none is pending (the clock is an hour ahead)."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta

from coffee_domain import Order
from process_domain import Checkout, CheckoutState

from stormgen.runtime import Application, Step, TestClock, on_timer


class LoggedCheckout(Checkout):
    @on_timer("PaymentDue")
    def payment_due(self, step: Step[CheckoutState]) -> None:
        with open(sys.argv[2], "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {step.key}\n")
        super().payment_due(step)


def main() -> None:
    clock = TestClock()
    clock.advance(timedelta(hours=1))
    app = Application.open(
        sys.argv[1], aggregates=[Order()], processes=[LoggedCheckout()], clock=clock
    )
    app.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with app.store.reading() as uow:
            if not uow.list_timers():
                break
        time.sleep(0.05)
    app.close()


if __name__ == "__main__":
    main()
