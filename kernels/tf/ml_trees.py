"""Tree ensembles of ``ai.onnx.ml``: TreeEnsembleRegressor, TreeEnsembleClassifier (opsets 1-3), TreeEnsemble (5).

Every form is first flattened into one :class:`Forest`: node arrays over all
trees at once, leaves pointing to themselves, and a leaf table of the values
each leaf adds per target. The traversal then moves every (row, tree) pair one
level per step with gathers, for as many steps as the deepest tree (unrolled up
to :data:`UNROLL_DEPTH`, a ``tf.while_loop`` beyond), so an ensemble traces into
a SavedModel with a dynamic batch. The comparisons run in the input's float
type, as onnx's reference does.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import tensorflow as tf

from kernels.tf import TF
from kernels.tf.ml import ML, apply_post_transform, as_array, class_labels

#: Deeper ensembles are walked by a ``tf.while_loop`` instead of unrolled steps.
UNROLL_DEPTH = 32

#: Node modes: ONNX-ML opset 5's numbering, with LEAF after them.
LEQ, LT, GTE, GT, EQ, NEQ, MEMBER, LEAF = range(8)
_MODE_NAMES = {"BRANCH_LEQ": LEQ, "BRANCH_LT": LT, "BRANCH_GTE": GTE, "BRANCH_GT": GT, "BRANCH_EQ": EQ,
               "BRANCH_NEQ": NEQ, "LEAF": LEAF}
_COMPARE = {LEQ: tf.less_equal, LT: tf.less, GTE: tf.greater_equal, GT: tf.greater, EQ: tf.equal, NEQ: tf.not_equal}
_AGGREGATES = ["AVERAGE", "SUM", "MIN", "MAX"]  # opset 5 numbers them in this order
_POST_TRANSFORMS = ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"]


@dataclasses.dataclass
class Forest:
    """All trees of an ensemble as flat node arrays; a leaf's next nodes are itself.

    ``values[n, t]`` is what node ``n`` adds to target ``t`` when it is a row's
    leaf (``has[n, t]`` whether it adds anything, for MIN and MAX); ``members``
    holds the set of each MEMBER node, padded with NaN.
    """

    feature: np.ndarray
    threshold: np.ndarray
    mode: np.ndarray
    true_next: np.ndarray
    false_next: np.ndarray
    missing_true: np.ndarray
    roots: np.ndarray
    values: np.ndarray
    has: np.ndarray
    members: np.ndarray | None = None

    def depth(self) -> int:
        """The longest root-to-leaf path, in steps."""
        leaf = self.mode == LEAF
        depth = np.zeros(len(self.mode), np.int64)
        for _ in range(len(self.mode) + 1):
            deeper = np.where(leaf, 0, 1 + np.maximum(depth[self.true_next], depth[self.false_next]))
            if np.array_equal(deeper, depth):
                return int(depth[self.roots].max(initial=0))
            depth = deeper
        raise ValueError("the tree ensemble has a cycle")


def leaf_table(n_nodes: int, n_targets: int, nodes: Any, targets: Any, weights: Any, aggregate: str):
    """``values`` and ``has`` of a Forest from (leaf node, target, weight) triples, combined per ``aggregate``."""
    nodes, targets = np.asarray(nodes, np.int64), np.asarray(targets, np.int64)
    weights = np.asarray(weights, np.float64)
    has = np.zeros((n_nodes, n_targets), bool)
    has[nodes, targets] = True
    if aggregate in ("SUM", "AVERAGE"):
        values = np.zeros((n_nodes, n_targets))
        np.add.at(values, (nodes, targets), weights)
    else:
        values = np.full((n_nodes, n_targets), np.inf if aggregate == "MIN" else -np.inf)
        (np.minimum if aggregate == "MIN" else np.maximum).at(values, (nodes, targets), weights)
        values[~has] = 0
    return values, has


def _condition(forest: Forest, v: tf.Tensor, index: tf.Tensor, nan_takes_missing: bool) -> tf.Tensor:
    """Whether each (row, tree) goes to the true branch from node ``index`` given its feature value ``v``."""
    threshold = tf.gather(tf.constant(forest.threshold, v.dtype), index)
    present = sorted(set(forest.mode[forest.mode != LEAF].tolist()))
    mode = tf.gather(tf.constant(forest.mode, tf.int32), index) if len(present) > 1 else None
    cond = tf.zeros_like(v, tf.bool)
    for code in present:
        if code == MEMBER:
            members = tf.gather(tf.constant(forest.members, v.dtype), index)
            hit = tf.reduce_any(tf.equal(members, v[..., tf.newaxis]), -1)
        else:
            hit = _COMPARE[code](v, threshold)
        cond = hit if mode is None else tf.where(tf.equal(mode, code), hit, cond)
    if forest.missing_true.any() or nan_takes_missing:
        missing = tf.gather(tf.constant(forest.missing_true), index) & tf.math.is_nan(v)
        cond = missing | (cond & ~tf.math.is_nan(v)) if nan_takes_missing else cond | missing
    return cond


def leaves(x: tf.Tensor, forest: Forest, nan_takes_missing: bool) -> tf.Tensor:
    """The leaf each row of ``x`` [N, F] reaches in every tree: [N, trees] node indices."""
    feature = tf.constant(forest.feature.astype(np.int32))
    true_next = tf.constant(forest.true_next.astype(np.int32))
    false_next = tf.constant(forest.false_next.astype(np.int32))
    index = tf.tile(tf.constant(forest.roots.astype(np.int32))[tf.newaxis], [tf.shape(x)[0], 1])

    def step(index: tf.Tensor) -> tf.Tensor:
        v = tf.gather(x, tf.gather(feature, index), batch_dims=1)
        cond = _condition(forest, v, index, nan_takes_missing)
        return tf.where(cond, tf.gather(true_next, index), tf.gather(false_next, index))

    depth = forest.depth()
    if depth <= UNROLL_DEPTH:
        for _ in range(depth):
            index = step(index)
        return index
    return tf.while_loop(lambda i, _: i < depth, lambda i, idx: (i + 1, step(idx)), (tf.constant(0), index))[1]


def aggregate(x: tf.Tensor, forest: Forest, how: str, nan_takes_missing: bool = False) -> tf.Tensor:
    """[N, targets]: the leaves' values combined over the trees (SUM, AVERAGE, MIN or MAX), in x's dtype."""
    index = leaves(x, forest, nan_takes_missing)
    values = tf.gather(tf.constant(forest.values, x.dtype), index)  # [N, trees, targets]
    if how in ("SUM", "AVERAGE"):
        total = tf.reduce_sum(values, 1)
        return total / len(forest.roots) if how == "AVERAGE" else total
    has = tf.gather(tf.constant(forest.has), index)
    bound = x.dtype.max if how == "MIN" else x.dtype.min
    values = tf.where(has, values, tf.constant(bound, x.dtype))
    return tf.reduce_min(values, 1) if how == "MIN" else tf.reduce_max(values, 1)


def _rows(x: tf.Tensor) -> tf.Tensor:
    x = x if x.dtype in (tf.float32, tf.float64) else tf.cast(x, tf.float32)
    return x[tf.newaxis] if x.shape.rank == 1 else x


# --- opsets 1-3: nodes named by (tree id, node id) ---------------------------------------------------------------

def _pick(values: Any, as_tensor: Any) -> np.ndarray | None:
    chosen = as_array(as_tensor) if as_tensor is not None else as_array(values)
    return None if chosen is None else chosen.reshape(-1)


def classic_forest(attrs: dict[str, Any], prefix: str, n_targets: int, how: str) -> Forest:
    """A Forest from the ``nodes_*`` attributes and the ``<prefix>_{ids,nodeids,treeids,weights}`` leaf entries."""
    tree_ids, node_ids = list(attrs["nodes_treeids"]), list(attrs["nodes_nodeids"])
    position = {(t, n): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    mode = np.array([_MODE_NAMES[m] for m in attrs["nodes_modes"]], np.int64)
    leaf = mode == LEAF
    own = np.arange(len(mode))
    true_next = np.array([position.get((t, n), -1) for t, n in zip(tree_ids, attrs["nodes_truenodeids"], strict=True)])
    false_next = np.array([position.get((t, n), -1) for t, n in zip(tree_ids, attrs["nodes_falsenodeids"], strict=True)])
    roots = np.array([tree_ids.index(t) for t in sorted(set(tree_ids))], np.int64)
    missing = attrs.get("nodes_missing_value_tracks_true")
    leaf_nodes = [position[t, n] for t, n in zip(attrs[f"{prefix}_treeids"], attrs[f"{prefix}_nodeids"], strict=True)]
    weights = _pick(attrs.get(f"{prefix}_weights"), attrs.get(f"{prefix}_weights_as_tensor"))
    values, has = leaf_table(len(mode), n_targets, leaf_nodes, attrs[f"{prefix}_ids"], weights, how)
    threshold = _pick(attrs.get("nodes_values"), attrs.get("nodes_values_as_tensor"))
    return Forest(
        feature=np.where(leaf, 0, np.asarray(attrs["nodes_featureids"], np.int64)),
        threshold=np.zeros(len(mode)) if threshold is None else threshold.astype(np.float64),
        mode=mode, true_next=np.where(leaf, own, true_next), false_next=np.where(leaf, own, false_next),
        missing_true=np.asarray(missing if missing is not None else [0] * len(mode), np.int64) >= 1,
        roots=roots, values=values, has=has)


def _base(attrs: dict[str, Any]) -> np.ndarray | None:
    base = _pick(attrs.get("base_values"), attrs.get("base_values_as_tensor"))
    return None if base is None or not len(base) else base


@TF.register(ML + "TreeEnsembleRegressor", since=1)
def tree_ensemble_regressor(x, *, n_targets: int = 1, aggregate_function: str = "SUM", post_transform: str = "NONE",
                            **attrs):
    """Targets [N, n_targets] (float32): the leaves' weights combined over the trees, plus base_values."""
    x = _rows(x)
    forest = classic_forest(attrs, "target", n_targets, aggregate_function)
    scores = aggregate(x, forest, aggregate_function, nan_takes_missing=True)
    base = _base(attrs)
    if base is not None:
        scores += tf.constant(base, scores.dtype)
    return apply_post_transform(tf.cast(scores, tf.float32), post_transform)


@TF.register(ML + "TreeEnsembleClassifier", since=1)
def tree_ensemble_classifier(x, *, classlabels_int64s=None, classlabels_strings=None, post_transform: str = "NONE",
                             **attrs):
    """(labels [N], scores [N, classes] float32) as onnx's reference and onnxruntime compute them.

    When every leaf weight is for one class id (a binary model), that score s
    becomes the second class's and the first's is 1 - s (no transform, PROBIT)
    or -s (the others) before the transform.
    """
    x = _rows(x)
    n_classes = max(len(classlabels_int64s or []), len(classlabels_strings or []))
    forest = classic_forest(attrs, "class", n_classes, "SUM")
    scores = tf.cast(aggregate(x, forest, "SUM", nan_takes_missing=True), tf.float32)
    base = _base(attrs)
    if base is not None:
        scores += tf.constant(base.astype(np.float32))
    if len(set(attrs["class_ids"])) == 1:
        positive = scores[:, :1]
        negative = 1 - positive if (post_transform or "NONE") in ("NONE", "PROBIT") else -positive
        scores = tf.concat([negative, positive], 1)
    scores = apply_post_transform(scores, post_transform)
    best = tf.argmax(scores, -1)
    if classlabels_int64s is not None and len(classlabels_int64s) == 1:
        if classlabels_int64s[0] != 1:
            raise ValueError(f"a single class label must be 1 (got {classlabels_int64s[0]})")
        return tf.cast(tf.equal(best, 1), tf.int64), scores
    return class_labels(best, classlabels_int64s, classlabels_strings), scores


# --- opset 5: TreeEnsemble, leaves in their own arrays ------------------------------------------------------------

def _membership(modes: np.ndarray, members: np.ndarray | None) -> np.ndarray | None:
    """Each node's set (NaN-padded rows); ``members`` lists the MEMBER nodes' sets in order, each ended by NaN."""
    if not (modes == MEMBER).any():
        return None
    if members is None:
        raise ValueError("a set membership node needs membership_values")
    sets = np.split(members, np.flatnonzero(np.isnan(members)) + 1)
    rows = [[] for _ in modes]
    for node, values in zip(np.flatnonzero(modes == MEMBER), sets, strict=False):
        rows[node] = list(values[~np.isnan(values)])
    width = max(1, *(len(r) for r in rows))
    return np.array([r + [np.nan] * (width - len(r)) for r in rows], np.float64)


@TF.register(ML + "TreeEnsemble", since=5)
def tree_ensemble(x, *, nodes_splits, nodes_featureids, nodes_modes, nodes_truenodeids, nodes_falsenodeids,
                  nodes_trueleafs, nodes_falseleafs, leaf_targetids, leaf_weights, tree_roots, n_targets: int = 1,
                  aggregate_function: int = 1, post_transform: int = 0, nodes_hitrates=None,
                  nodes_missing_value_tracks_true=None, membership_values=None):
    """[N, n_targets] in x's dtype; node i < len(nodes) is a branch, leaf j is node len(nodes) + j."""
    del nodes_hitrates
    splits, modes = as_array(nodes_splits).reshape(-1), as_array(nodes_modes).reshape(-1).astype(np.int64)
    n, n_leaves = len(modes), len(as_array(leaf_weights).reshape(-1))
    own = np.arange(n, n + n_leaves)

    def target(ids: Any, is_leaf: Any) -> np.ndarray:
        return np.asarray(ids, np.int64) + n * np.asarray(is_leaf, np.int64)

    roots = [n + nodes_truenodeids[r] if nodes_trueleafs[r] and nodes_falseleafs[r]
             and nodes_truenodeids[r] == nodes_falsenodeids[r] else r for r in tree_roots]
    how = _AGGREGATES[aggregate_function]
    values, has = leaf_table(n + n_leaves, n_targets, own, leaf_targetids, as_array(leaf_weights).reshape(-1), how)
    missing = nodes_missing_value_tracks_true or [0] * n
    members = as_array(membership_values)
    forest = Forest(
        feature=np.concatenate([np.asarray(nodes_featureids, np.int64), np.zeros(n_leaves, np.int64)]),
        threshold=np.concatenate([splits.astype(np.float64), np.zeros(n_leaves)]),
        mode=np.concatenate([modes, np.full(n_leaves, LEAF)]),
        true_next=np.concatenate([target(nodes_truenodeids, nodes_trueleafs), own]),
        false_next=np.concatenate([target(nodes_falsenodeids, nodes_falseleafs), own]),
        missing_true=np.concatenate([np.asarray(missing, np.int64) >= 1, np.zeros(n_leaves, bool)]),
        roots=np.asarray(roots, np.int64), values=values, has=has)
    member_rows = _membership(modes, None if members is None else members.reshape(-1).astype(np.float64))
    if member_rows is not None:
        forest.members = np.concatenate([member_rows, np.full((n_leaves, member_rows.shape[1]), np.nan)])
    scores = aggregate(_rows(x), forest, how)
    return apply_post_transform(scores, _POST_TRANSFORMS[post_transform])
