"""Serve the hand-written shop with uvicorn, as `serve` does: `python limits_server.py URL PORT`.

The limits come from the ``STORMGEN_*`` environment variables (docs/http.md), so a
test sets them on the process it starts.
"""

from __future__ import annotations

import sys

from http_shop import open_shop

from stormgen.runtime.http import serve


def main() -> None:
    url, port = sys.argv[1], int(sys.argv[2])
    application = open_shop(url)
    try:
        serve(application, "127.0.0.1", port, log_level="warning", announce=lambda _: None)
    finally:
        application.close()


if __name__ == "__main__":
    main()
