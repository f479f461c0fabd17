"""Try each rewrite rule only on nodes of its pattern's root op type.

onnxscript's ``RewriteRuleSet`` tries every rule on every node, and a failed
try costs the matcher's set-up (tens of microseconds) even when the op type
differs. With ~300 rules at ``-O2`` that dominated the pipeline's time. The
proxies here turn a try on a node of another op type into one string
comparison, so rules are still tried in the same order, on the same nodes they
could match: the rewrite result is unchanged.

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


def dispatched(rules: Sequence[RewriteRule]) -> RewriteRuleSet:
    """A rule set equivalent to ``RewriteRuleSet(rules)`` that skips impossible tries cheaply."""
    return RewriteRuleSet([_wrap(rule) for rule in rules])
