"""The renderers depend on the output types, not on the registry of targets that runs them."""

from __future__ import annotations

import subprocess
import sys

RENDERERS = (
    "stormgen.render.python",
    "stormgen.render.docs",
    "stormgen.render.asyncapi",
    "stormgen.render.jsonschema",
)


def test_no_renderer_imports_the_targets() -> None:
    script = (
        "import importlib, sys\n"
        f"for name in {RENDERERS!r}:\n"
        "    importlib.import_module(name)\n"
        "print('stormgen.render.targets' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
