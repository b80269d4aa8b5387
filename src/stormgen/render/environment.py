"""The one jinja2 environment factory every renderer uses.

Templates live under ``templates/<subdir>/`` and are named after the file they
produce (``board.html.jinja``). Logic is computed in Python; templates only print.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2

from stormgen.resources import templates_dir

#: Filters shared by every target; keep them tiny and pure.
FILTERS: dict[str, Any] = {}


@cache
def make_environment(subdir: str, *, autoescape: bool | None = None) -> jinja2.Environment:
    """Return the (cached) environment for the templates in ``templates/<subdir>``.

    ``autoescape`` defaults to on for HTML/XML/SVG templates (by file name) and off
    for anything else (Python, Markdown, YAML); pass a bool to force it.
    """
    loader = jinja2.FileSystemLoader(str(templates_dir() / subdir))
    escape: bool | Any = (
        autoescape
        if autoescape is not None
        else jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "svg", "html.jinja", "svg.jinja"),
            default_for_string=False,
            default=False,
        )
    )
    env = jinja2.Environment(
        loader=loader,
        autoescape=escape,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(FILTERS)
    return env
