"""Try each rewrite rule only on nodes of its pattern's root op type.

onnxscript's ``RewriteRuleSet`` tries every rule on every node, and a failed
try costs the matcher's set-up (tens of microseconds) even when the op type
differs. With ~300 rules at ``-O2`` that dominated the pipeline's time; even a
filter that rejects a try with one string comparison costs ``rules x nodes``
calls. :func:`dispatched` therefore hands onnxscript a single rule, a
:class:`_OpTable`, which looks the node's op type up in a table and tries
only the rules rooted at that op (and those rooted at any op), in their
original order: the rewrite result is unchanged.

Rules with several output nodes (onnxscript's ``SlicesSplit``: two Slices of one
tensor -> Split) are worse: the matcher scans the whole graph for every node it
tries them on, which is quadratic in graph size. They are tried only on nodes
whose first input another node of a pattern output's op type also reads (a
sibling), when the pattern's output nodes share their first input, so only
such nodes can match; the scan then happens once per sibling rather than once
per node.
"""

from __future__ import annotations

from collections.abc import Sequence

from onnxscript.rewriter import RewriteRule, RewriteRuleSet
from onnxscript.rewriter._pattern_ir import StringConstantPattern

import ir


class _RootOpFilter:
    """A rule, tried only on nodes whose op type is its pattern's root op type."""

    def __init__(self, rule: RewriteRule, op_type: str) -> None:
        self._rule = rule
        self._op_type = op_type

    def __getattr__(self, name: str):
        return getattr(self._rule, name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._rule!r}, {self._op_type!r})"

    def try_rewrite(self, model: ir.Model, graph, node: ir.Node, **kwargs):
        if node.op_type != self._op_type:
            return None
        return self._rule.try_rewrite(model, graph, node, **kwargs)


class _SiblingFilter(_RootOpFilter):
    """A multi-output rule, tried only on nodes with a sibling of another output's op type."""

    def __init__(self, rule: RewriteRule, op_type: str, sibling_types: frozenset[str]) -> None:
        super().__init__(rule, op_type)
        self._sibling_types = sibling_types

    def try_rewrite(self, model: ir.Model, graph, node: ir.Node, **kwargs):
        if node.op_type != self._op_type or not _has_sibling(node, self._sibling_types):
            return None
        return self._rule.try_rewrite(model, graph, node, **kwargs)


def _has_sibling(node: ir.Node, op_types: frozenset[str]) -> bool:
    """Another node of ``op_types`` reads ``node``'s first input."""
    first = node.inputs[0] if node.inputs else None
    if first is None:
        return False
    return any(u.node is not node and u.node.op_type in op_types for u in first.uses())


def _op_types(rule: RewriteRule) -> list[str | None]:
    """The fixed op type of each output node of ``rule``'s pattern (None: any op)."""
    outputs = rule._target_pattern.output_nodes  # noqa: SLF001  (no public accessor)
    return [o.op.value() if isinstance(o.op, StringConstantPattern) else None for o in outputs]


def root_op_type(rule: RewriteRule) -> str | None:
    """The op type every match of ``rule`` is rooted at, or None if it is not one fixed op."""
    return _op_types(rule)[0]


def _wrap(rule: RewriteRule) -> RewriteRule | _RootOpFilter:
    op_types = _op_types(rule)
    if op_types[0] is None:
        return rule
    if len(op_types) == 1:
        return _RootOpFilter(rule, op_types[0])
    outputs = rule._target_pattern.output_nodes  # noqa: SLF001
    firsts = {id(o.inputs[0]) if o.inputs else None for o in outputs}
    if None in op_types[1:] or len(firsts) != 1 or None in firsts:
        return _RootOpFilter(rule, op_types[0])  # outputs need not share a first input
    return _SiblingFilter(rule, op_types[0], frozenset(op_types[1:]))


class _OpTable:
    """Many rules as one: ``try_rewrite`` tries only those that can match the node's op type.

    onnxscript's rewrite loop reads ``name``, ``as_function`` and
    ``remove_nodes`` of the rule that matched right after ``try_rewrite``
    returns; they are forwarded from that rule.
    """

    def __init__(self, rules: Sequence[RewriteRule]) -> None:
        wrapped = [_wrap(rule) for rule in rules]
        roots = [w._op_type if isinstance(w, _RootOpFilter) else None for w in wrapped]
        self._any = [w for w, root in zip(wrapped, roots, strict=True) if root is None]
        self._by_op: dict[str, list] = {}
        for op_type in dict.fromkeys(r for r in roots if r is not None):
            self._by_op[op_type] = [
                w for w, root in zip(wrapped, roots, strict=True) if root in (op_type, None)
            ]
        self._rules = list(rules)
        self._matched: RewriteRule | _RootOpFilter = wrapped[0]
        pre = [r.graph_pre_visitor for r in rules if r.graph_pre_visitor]
        post = [r.graph_post_visitor for r in rules if r.graph_post_visitor]
        self.graph_pre_visitor = (lambda: [f() for f in pre]) if pre else None
        self.graph_post_visitor = (lambda: [f() for f in post]) if post else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._rules!r})"

    @property
    def name(self) -> str | None:
        return self._matched.name

    @property
    def as_function(self) -> bool:
        return self._matched.as_function

    @property
    def remove_nodes(self) -> bool:
        return self._matched.remove_nodes

    def try_rewrite(self, model: ir.Model, graph, node: ir.Node, **kwargs):
        for rule in self._by_op.get(node.op_type, self._any):
            delta = rule.try_rewrite(model, graph, node, **kwargs)
            if delta is not None:
                self._matched = rule
                return delta
        return None


def dispatched(rules: Sequence[RewriteRule]) -> RewriteRuleSet:
    """A rule set equivalent to ``RewriteRuleSet(rules)`` that tries each node's rules only."""
    rule_set = RewriteRuleSet([_OpTable(rules)])
    rule_set.remove_unused_nodes = any(not rule.remove_nodes for rule in rules)
    return rule_set
