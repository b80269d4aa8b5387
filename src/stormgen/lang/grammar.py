"""Parse one `.storm` text with the textX grammar, turning syntax errors into E001."""

from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from stormgen.diagnostics import Diagnostic, Level, Location
from stormgen.resources import grammar_dir

# A string (kept) or a comment (blanked). Strings go first so a `#` inside one stays.
_STRING_OR_COMMENT = re.compile(r'"(?:[^"\\\r\n]|\\.)*"|#[^\n]*')
_NESTING = re.compile(r'"(?:[^"\\\r\n]|\\.)*"|[(\[{]|[)\]}]|(?:(?:-|\bnot\b)\s*){2,}')
_TOKEN = re.compile(r'[A-Za-z0-9_.]+|"(?:[^"\\\r\n]|\\.)*"?|->|<->|[+\-=!<>]=|\S')

# How the error message names the grammar's rules (textX would print their regexes).
_FRIENDLY = {
    "Name": "a name",
    "DottedName": "a name",
    "FieldName": "a field name",
    "FieldStart": "a field (`name: Type`)",
    "FieldTail": "'=' | 'pii' | 'was' | a string",
    "Text": "a string",
    "Integer": "a whole number",
    "Number": "a number",
    "AtomText": "an expression",
    "ValueName": "an expression",
    "LoopVar": "a name",
    "TypeName": "a type",
    "BinaryOpText": "an operator",
    "Version": "a version (`v2`)",
    "Pattern": "a pattern",
    "PiiFlag": "'pii'",
    "WasFlag": "'was'",
    "AssignOp": "'=' | '+=' | '-='",
    "Arrow": "'->' | '<->'",
}
_OPERAND_PREFIX = "'-' | 'not'"


@cache
def metamodel() -> Any:
    """Return the textX metamodel of the language, built once per process, its parser
    running the faster rule methods of :mod:`stormgen.lang.engine`."""
    from stormgen.lang import engine

    mm = stock_metamodel()
    engine.install(mm._parser_blueprint.parser_model)
    return mm


def stock_metamodel() -> Any:
    """A new textX metamodel of the language, its parser as arpeggio makes it."""
    from textx import metamodel_from_file

    # autokwd: keywords match as whole words only (`notes` is a name, not `not es`);
    # use_regexp_group: `FieldStart` reads `name:` and keeps just the name.
    return metamodel_from_file(str(grammar_dir() / "storm.tx"), autokwd=True, use_regexp_group=True)


def blank_comments(text: str) -> str:
    """Replace every comment by spaces, so the parser never tries a comment rule.

    Positions (lines and columns) are unchanged. Arpeggio would otherwise try the
    comment rule before every token, which costs a third of the parse.
    """
    if "#" not in text:
        return text

    def blank(m: re.Match[str]) -> str:
        s = m.group()
        return s if s[0] == '"' else " " * len(s)

    return _STRING_OR_COMMENT.sub(blank, text)


@dataclass(slots=True)
class LineIndex:
    """Turn offsets into 1-based line and column, in O(log n) per lookup."""

    starts: list[int]

    @classmethod
    def of(cls, text: str) -> LineIndex:
        starts = [0]
        find = text.find
        i = find("\n")
        while i != -1:
            starts.append(i + 1)
            i = find("\n", i + 1)
        return cls(starts)

    def linecol(self, offset: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def offset(self, line: int, column: int) -> int:
        return self.starts[line - 1] + column - 1


def describe_rule(rule: Any) -> str:
    """Name one expected rule the way a user writes it."""
    name = getattr(rule, "rule_name", "") or ""
    if name == "EOF" or type(rule).__name__ == "EndOfFile":
        return "end of file"
    if name in _FRIENDLY:
        return _FRIENDLY[name]
    text = getattr(rule, "str_repr", None) or getattr(rule, "to_match", None)
    if isinstance(text, str):
        if text.startswith("-|not"):
            return _OPERAND_PREFIX
        if text.endswith(r"\b"):
            text = text[:-2]
        return f"'{text}'"
    return name or str(rule)


def expected_list(rules: list[Any]) -> str:
    """Join the expected tokens: "'}'", "'a' or 'b'", "one of 'a', 'b' or 'c'"."""
    # A friendly name may stand for several tokens ("'-' | 'not'"): list each once.
    names = list(dict.fromkeys(part for r in rules or () for part in describe_rule(r).split(" | ")))
    if not names:
        return "something else"
    if len(names) == 1:
        return names[0]
    return "one of " + ", ".join(names[:-1]) + " or " + names[-1]


def last_token_offset(text: str) -> int:
    """Offset of the start of the last token (comments already blanked), 0 if none."""
    end = len(text.rstrip())
    if end == 0:
        return 0
    start = 0
    for m in _TOKEN.finditer(text, max(0, end - 4096)):
        if m.start() < end:
            start = m.start()
    return start


def syntax_diagnostic(text: str, display: str, exc: Any, index: LineIndex) -> Diagnostic:
    """E001 for a textX syntax error: what was expected, where, and what was found."""
    line = int(exc.line or 1)
    col = int(exc.col or 1)
    offset = min(index.offset(line, col), len(text))
    expected = expected_list(list(exc.expected_rules or []))
    if not text[offset:].strip():
        # An unexpected end of file is reported at the last token, where the user looks.
        last = last_token_offset(text)
        line, col = index.linecol(last)
        return Diagnostic(
            "E001",
            Level.ERROR,
            f"unexpected end of file: expected {expected}",
            Location(display, line, col),
        )
    m = _TOKEN.match(text, offset)
    found = m.group() if m else text[offset]
    if len(found) > 40:
        found = found[:37] + "..."
    return Diagnostic(
        "E001",
        Level.ERROR,
        f"syntax error: expected {expected}, found '{found}'",
        Location(display, line, col),
        _keyword_help(found, list(exc.expected_rules or [])),
    )


def _keyword_help(found: str, rules: list[Any]) -> str | None:
    """``did you mean 'aggregate'?`` when the token found is a misspelt expected keyword."""
    if not found[:1].isalpha():
        return None
    keywords = [
        part.strip("'")
        for r in rules
        for part in describe_rule(r).split(" | ")
        if part.startswith("'") and part[1:2].isalpha()
    ]
    close = difflib.get_close_matches(found, keywords, n=1, cutoff=0.75)
    return f"did you mean '{close[0]}'?" if close else None


def deepest_nesting(text: str) -> int:
    """Offset where the input nests deepest (for "nesting too deep").

    Brackets nest, and so does a run of prefix operators (`- - - x`, `not not x`); the
    answer is the innermost bracket or the start of the longest run.
    """
    depth = best = 0
    where = 0
    for m in _NESTING.finditer(text):
        c = m.group()
        if c in "([{":
            depth += 1
            if depth > best:
                best, where = depth, m.start()
        elif c in ")]}":
            depth = max(0, depth - 1)
        elif c[0] in "-n":
            run = len(re.findall(r"-|not", c))
            if depth + run > best:
                best, where = depth + run, m.start()
    return where
