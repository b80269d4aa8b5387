"""Read the textX parse tree into light objects shaped like textX's model objects.

textX turns a parse tree into its object model with a general walk that also works
out every node's line and column, parent links and cross-reference bookkeeping; on a
large model that walk costs two thirds as much as the parse itself. The builder needs
none of it: this module does the same conversion for this grammar's rule kinds
(common, abstract and match rules; ``=``, ``?=``, ``+=``, ``*=`` assignments) with
plain objects, so the builder reads ``obj.name``, ``obj.members``... as it would on
textX's objects.

This module and :mod:`stormgen.lang.engine` (the parser's faster rule methods) are
the ones that read textX's and arpeggio's internals (the parser's blueprint, its parse
tree, the rules' attributes): ``tests/lang/test_lang_tree.py`` checks this one against
textX's own object model, and the ``generator`` extra pins textX below its next major
version (pyproject.toml).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from arpeggio import NonTerminal, RegExMatch, Terminal
from textx.const import MULT_ONEORMORE, MULT_ZEROORMORE, RULE_ABSTRACT, RULE_MATCH


class Node:
    """A grammar rule's match: attributes named as in the grammar, and ``_tx_position``."""

    _tx_position: int = 0


@cache
def _node_class(tx_class: Any) -> tuple[type[Node], tuple[str, ...]]:
    """A :class:`Node` subclass named after the rule, with the rule's attribute defaults.

    Returns the class and the names of its list attributes (set per instance).
    """
    defaults: dict[str, Any] = {}
    lists: list[str] = []
    for attr in tx_class._tx_attrs.values():
        if attr.mult in (MULT_ZEROORMORE, MULT_ONEORMORE):
            lists.append(attr.name)
        else:
            defaults[attr.name] = False if attr.bool_assignment else None
    return type(tx_class.__name__, (Node,), defaults), tuple(lists)


def _terminal(node: Terminal) -> str:
    rule = node.rule
    # As textX's use_regexp_group: a regex with one group gives just that group.
    if isinstance(rule, RegExMatch) and rule.regex.groups == 1:
        return str(node.extra_info.group(1))
    return str(node.value)


def _match(node: Any) -> str:
    if isinstance(node, Terminal):
        return _terminal(node)
    return "".join(_match(n) for n in node)


def convert(node: Any) -> Any:
    """The value of a parse-tree node: a :class:`Node`, or a string for a match rule."""
    if isinstance(node, Terminal):
        return _terminal(node)
    tx_class = node.rule._tx_class
    kind = tx_class._tx_type
    if kind == RULE_ABSTRACT:
        # An alternative of other rules (or `'(' Expr ')'`): the one rule matched.
        for child in node:
            if not isinstance(child, Terminal):
                return convert(child)
        return _match(node)
    if kind == RULE_MATCH:
        return _match(node)
    cls, lists = _node_class(tx_class)
    obj = cls()
    obj._tx_position = node.position
    values = obj.__dict__
    for name in lists:
        values[name] = []
    for child in node:
        if not isinstance(child, NonTerminal):
            continue  # a keyword or punctuation of the rule
        rule = child.rule
        attr = getattr(rule, "_attr_name", None)
        if attr is None:
            continue
        op = child.rule_name
        if op == "__asgn_optional":  # `flag?=X`
            values[attr] = True
        elif op == "__asgn_plain":  # `a=X`, or `a+=X` once
            value = convert(child[0])
            if attr in values and isinstance(values[attr], list):
                values[attr].append(value)
            else:
                values[attr] = value
        else:  # `a+=X*`, `a*=X`, `a+=X[',']`: every match but the separators
            target = values[attr]
            for item in child:
                if item.rule_name != "sep":
                    target.append(convert(item))
    return obj


def root(parse_tree: Any) -> Any:
    """The model node of a file's parse tree, or ``None`` for a file with nothing in it."""
    first = parse_tree[0] if len(parse_tree) else None
    if first is None or isinstance(first, Terminal):  # only the end of file
        return None
    return convert(first)


def parse(text: str) -> Any:
    """Parse ``text`` with the language's parser; the model node, or ``None`` for a file
    with nothing in it. textX's errors (``TextXSyntaxError``...) propagate."""
    from stormgen.lang.grammar import metamodel

    # textX's parser for the grammar; the parse tree is read here, not by textX's
    # (much slower, general) object-model walk.
    parser = metamodel()._parser_blueprint.clone()
    try:
        parser.parse(text)
        return root(parser.parse_tree)
    finally:
        _release(parser)


def _release(parser: object) -> None:
    """Drop the parser's parse tree and caches so reference counting frees them now.

    The parse tree is most of the garbage a parse leaves; without this it waits for a
    full collection, which walks every object of a large model again.
    """
    for attr in ("parse_tree", "nm", "comment_positions"):
        if hasattr(parser, attr):
            setattr(parser, attr, None)
