"""Python literals for model strings and numbers, safe to paste into generated code.

Every string from the model (descriptions, messages, defaults) reaches the generated
code only through these functions, which escape it completely: quotes, backslashes,
newlines and any non-printable character. The result is always one line, so no model
text can end a string, a comment or a docstring early.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from decimal import Decimal


def py_str(text: str) -> str:
    """A Python string literal for ``text`` in the quote style ``ruff format`` prefers."""
    quote = "'" if '"' in text and "'" not in text else '"'
    return quote + _escape(text, quote) + quote


def py_docstring(text: str) -> str:
    """A one-line triple-quoted docstring for ``text``, whitespace runs folded to a space."""
    flat = " ".join(text.split()) or "-"
    return '"""' + _escape(flat, '"') + '"""'


def comment_text(text: str) -> str:
    """``text`` folded to one line for a ``#`` comment (which then cannot end early)."""
    return _escape(" ".join(text.split()), "")


def _escape(text: str, quote: str) -> str:
    if (
        text.isascii()
        and text.isprintable()
        and "\\" not in text
        and (not quote or quote not in text)
    ):
        return text  # the common case, kept fast: nothing to escape
    out: list[str] = []
    for ch in text:
        if ch == "\\":
            out.append("\\\\")
        elif quote and ch == quote:
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable():
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def py_decimal(value: int | Decimal) -> str:
    """``Decimal("4.50")``: exact, as written in the model."""
    return f'Decimal("{value}")'


def py_float(value: int | Decimal) -> str:
    """A float literal: ``4.5``, ``3.0``."""
    return repr(float(value))


def py_timedelta(value: timedelta, name: str = "timedelta") -> str:
    """A readable duration: ``timedelta(minutes=15)``, ``-timedelta(days=1, hours=2)``.

    ``name`` is what the module calls ``datetime.timedelta``.
    """
    if not value:
        return f"{name}(0)"
    sign = "-" if value < timedelta(0) else ""
    rest = abs(value)
    parts = []
    days = rest.days
    seconds = rest.seconds
    if days and days % 7 == 0 and not seconds and not rest.microseconds:
        parts.append(f"weeks={days // 7}")
    elif days:
        parts.append(f"days={days}")
    for unit, size in (("hours", 3600), ("minutes", 60), ("seconds", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{unit}={count}")
    if rest.microseconds:
        parts.append(f"microseconds={rest.microseconds}")
    return f"{sign}{name}({', '.join(parts)})"


def py_tuple(items: Iterable[str]) -> str:
    """A tuple display of Python source items: ``()``, ``(a,)``, ``(a, b)``."""
    listed = list(items)
    if not listed:
        return "()"
    if len(listed) == 1:
        return f"({listed[0]},)"
    return "(" + ", ".join(listed) + ")"


def py_description(text: str | None) -> str:
    """The docstring of a model element's description; none (``""``) without one."""
    return py_docstring(text) if text else ""
