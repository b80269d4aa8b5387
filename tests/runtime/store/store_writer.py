"""A child process for the store tests: appends events and prints what was acknowledged.

Usage: ``python store_writer.py URL STREAM COUNT [--contend]``. Prints one line per
acknowledged append, ``POSITION EVENT_ID``, flushed at once, so a parent that kills
this process knows exactly what the store acknowledged. With ``--contend`` every
append expects the version the stream had just before and retries on conflict (many
writers on one stream); COUNT 0 means "forever".
"""

from __future__ import annotations

import sys

from stormgen.runtime.envelope import NewEvent
from stormgen.runtime.errors import ConcurrencyError
from stormgen.runtime.store import open_store


def main() -> None:
    url, stream, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    contend = "--contend" in sys.argv
    store = open_store(url)
    out = sys.stdout
    print("ready", flush=True)
    done = 0
    while count == 0 or done < count:
        while True:
            version = store.stream_version(stream)
            event = NewEvent(type="Test.Written", data={"n": done, "pad": "x" * 64})
            try:
                result = store.append(stream, [event], version)
            except ConcurrencyError:
                if not contend:
                    raise
                continue
            break
        out.write(f"{result.last_position} {event.id}\n")
        out.flush()
        done += 1
    store.close()


if __name__ == "__main__":
    main()
