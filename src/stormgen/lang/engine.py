"""Faster ``parse`` methods for the language parser's rules.

Arpeggio runs every rule through one general method (``ParsingExpression.parse``) that
checks for debug printing and memoization, keeps the name of the rule being parsed for
those prints, and then calls the rule kind's ``_parse``; a root rule's match is then
flattened twice (once by ``parse``, again by ``NonTerminal``). That bookkeeping, not the
regexes, was most of the parse: ~27 rules tried per line of a model. :func:`install`
gives the parser's sequences, ordered choices, optionals, zero-or-more repetitions and
regex matches (keywords included, with autokwd) a ``parse`` of their own that does the
same work in one call and flattens once. They serve a parser without debug printing or
memoization (the language's); any other parser falls back to arpeggio's method.

The parse tree, the errors (the furthest position and the rules expected there) and
the backtracking are arpeggio's own: these methods keep its bookkeeping
(``last_pexpression``, which tells a string match whether it is inside a sequence; the
whitespace and comment skipping before a match) and its tree building (``flatten``,
``reduce_tree``, suppression) step for step, and ``tests/lang/test_lang_engine.py``
compares their trees and errors with arpeggio's. Like :mod:`stormgen.lang.tree`, this
module reads arpeggio's internals; the ``generator`` extra pins arpeggio below its next
major version (pyproject.toml).
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from arpeggio import (
    NoMatch,
    NonTerminal,
    Optional,
    OrderedChoice,
    ParseTreeNode,
    RegExMatch,
    Sequence,
    Terminal,
    ZeroOrMore,
)


def _flatten(items: list[Any], into: list[Any]) -> list[Any]:
    """arpeggio's ``flatten``: nested plain lists opened, nodes kept (a node of the
    parse tree's own types is told by its exact type, anything else as arpeggio does)."""
    for e in items:
        kind = type(e)
        if kind is NonTerminal or kind is Terminal:
            into.append(e)
        elif kind is list or (hasattr(e, "__iter__") and kind is not str):
            _flatten(e, into)
        else:
            into.append(e)
    return into


def _node(rule: Any, parser: Any, result: list[Any]) -> Any:
    """A root rule's match as arpeggio makes it: flattened, maybe reduced, a node."""
    result = _flatten(result, [])
    if parser.reduce_tree and len(result) == 1:
        result = result[0]
    if isinstance(result, ParseTreeNode):
        return result
    # NonTerminal(rule, result) without its second flattening of the flat list.
    node = NonTerminal.__new__(NonTerminal)
    ParseTreeNode.__init__(node, rule, result[0].position if result else 0, False)
    node.extend(result)
    node._filtered = False
    return node


def _sequence(self: Any, parser: Any) -> Any:
    if parser.debug or parser.memoization:
        return Sequence.parse(self, parser)
    c_pos = parser.position
    last = parser.last_pexpression
    parser.last_pexpression = self
    results: list[Any] = []
    append = results.append
    try:
        for e in self.nodes:
            result = e.parse(parser)
            if result:
                append(result)
    except NoMatch:
        parser.position = c_pos  # backtracking
        raise
    finally:
        parser.last_pexpression = last
    if not results or self.suppress or results[0] is None:
        return None
    return _node(self, parser, results) if self.root else results


def _ordered_choice(self: Any, parser: Any) -> Any:
    if parser.debug or parser.memoization:
        return OrderedChoice.parse(self, parser)
    c_pos = parser.position
    last = parser.last_pexpression
    parser.last_pexpression = self
    try:
        for e in self.nodes:
            try:
                result = e.parse(parser)
            except NoMatch:
                parser.position = c_pos  # backtracking
                continue
            if result is not None:
                break
        else:
            parser.position = c_pos  # a suppressed alternative may have moved on
            parser._nm_raise(self, c_pos, parser)
    finally:
        parser.last_pexpression = last
    if self.suppress:
        return None
    return _node(self, parser, [result]) if self.root else [result]


def _optional(self: Any, parser: Any) -> Any:
    if parser.debug or parser.memoization:
        return Optional.parse(self, parser)
    c_pos = parser.position
    last = parser.last_pexpression
    parser.last_pexpression = self
    try:
        result = self.nodes[0].parse(parser)
    except NoMatch:
        parser.position = c_pos  # backtracking
        return None
    finally:
        parser.last_pexpression = last
    if result is None or self.suppress:
        return None
    return _node(self, parser, [result]) if self.root else [result]


def _zero_or_more(self: Any, parser: Any) -> Any:
    if parser.debug or parser.memoization:
        return ZeroOrMore.parse(self, parser)
    last = parser.last_pexpression
    parser.last_pexpression = self
    results: list[Any] = []
    append = results.append
    p = self.nodes[0].parse
    sep = self.sep.parse if self.sep else None
    result = None
    try:
        while True:
            c_pos = parser.position
            try:
                if sep and result:
                    sep_result = sep(parser)
                    if sep_result:
                        append(sep_result)
                result = p(parser)
            except NoMatch:
                parser.position = c_pos  # backtracking
                break
            if not result:
                break
            append(result)
    finally:
        parser.last_pexpression = last
    if self.suppress or (results and results[0] is None):
        return None
    return _node(self, parser, results) if self.root and results else results


def _regex_match(self: Any, parser: Any) -> Any:
    if parser.debug:
        return RegExMatch.parse(self, parser)
    # Match.parse: whitespace, then comments (each position's skip is kept).
    if parser.skipws and not parser.in_lex_rule:
        pos = parser.position
        ws = parser.ws
        i = parser.input
        length = len(i)
        while pos < length and i[pos] in ws:
            pos += 1
        parser.position = pos
    if parser.skipws and parser.position in parser.comment_positions:
        parser.position = parser.comment_positions[parser.position]
    elif not parser.in_parse_comments and not parser.in_lex_rule:
        comment_start = parser.position
        self._parse_comments(parser)
        parser.comment_positions[comment_start] = parser.position
    # RegExMatch._parse
    c_pos = parser.position
    m = self.regex.match(parser.input, c_pos)
    if m is None:
        parser._nm_raise(self, c_pos, parser)
    matched = m.group()
    parser.position = c_pos + len(matched)
    if not matched or self.suppress:
        return None
    return Terminal(self, c_pos, matched, extra_info=m)


_FAST: dict[type, Callable[[Any, Any], Any]] = {
    RegExMatch: _regex_match,
    Sequence: _sequence,
    OrderedChoice: _ordered_choice,
    Optional: _optional,
    ZeroOrMore: _zero_or_more,
}


def install(parser_model: Any) -> int:
    """Give every plain sequence, choice, optional, zero-or-more and regex rule reachable
    from ``parser_model`` its fast ``parse``; the number of rules given one.

    Rules with their own whitespace settings and end-of-line-terminated repetitions
    (none in this grammar) keep arpeggio's method; so does every other kind of rule.
    """
    done = 0
    seen: set[int] = set()
    pending = [parser_model]
    while pending:
        rule = pending.pop()
        if id(rule) in seen:
            continue
        seen.add(id(rule))
        pending.extend(rule.nodes)
        fast = _FAST.get(type(rule))  # exact type: subclasses keep their own parse
        if fast is None or getattr(rule, "ws", None) is not None:
            continue
        if getattr(rule, "skipws", None) is not None or getattr(rule, "eolterm", False):
            continue
        # An instance attribute: the rule's class (which string matches inspect) is kept.
        rule.parse = types.MethodType(fast, rule)
        done += 1
    return done
