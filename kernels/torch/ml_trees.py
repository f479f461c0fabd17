"""Tree ensembles of the ``ai.onnx.ml`` domain: TreeEnsembleRegressor, TreeEnsembleClassifier
(ml opsets 1 and 3) and TreeEnsemble (ml opset 5).

All trees and samples are evaluated at once: the ensemble becomes flat node
tables (feature, split, mode, true and false child; leaves are nodes of mode 7)
and each level of descent is a few 1-D gathers over the (sample, tree) pairs
still descending, so a call costs ``depth`` vectorized steps, never a Python
loop over nodes or samples (100 trees x 1000 samples: about 25 ms of CPU time).
"""

import torch
from torch import Tensor

from kernels.torch import TORCH
from kernels.torch.ml import _ML, _floats, _no_strings, _post_transform, _rows, _transform_name

# Node modes in the flat tables: 0-6 as TreeEnsemble-5 numbers them (LEQ, LT, GTE, GT, EQ, NEQ,
# MEMBER) and 7 for a leaf (a literal below: TorchScript cannot read module-level ints).

# --- tree ensembles -----------------------------------------------------------------


def _descend(
    x: Tensor,
    roots: Tensor,
    feature: Tensor,
    split: Tensor,
    mode: Tensor,
    true_id: Tensor,
    false_id: Tensor,
    missing_true: Tensor,
    members: Tensor | None,
) -> Tensor:
    """The leaf [N, T] that each sample reaches in each tree.

    Flat tables are indexed by node; a leaf has mode ``7``. Each step moves every
    (sample, tree) pair that is not at a leaf yet one level down, with 1-D
    ``index_select`` gathers over those pairs only, so a step costs what is
    still descending and the loop runs once per level of the deepest tree.
    """
    xc = _rows(x).to(split.dtype)
    n, t, width = xc.shape[0], roots.shape[0], xc.shape[1]
    values = xc.reshape(-1)
    node = roots.repeat(n)  # pair p = sample p // t, tree p % t
    row = torch.arange(n, device=x.device).repeat_interleave(t) * width
    live = torch.arange(n * t, device=x.device)
    only_leq = bool(((mode == 0) | (mode == 7)).all())
    track_missing = bool(missing_true.any())
    for _ in range(mode.shape[0] + 1):  # at most one step per level
        at = node.index_select(0, live)
        m = mode.index_select(0, at)
        inner = m != 7
        if not bool(inner.all()):
            keep = torch.nonzero(inner).reshape(-1)
            live, at, m = live.index_select(0, keep), at.index_select(0, keep), m.index_select(0, keep)
        if live.shape[0] == 0:
            break
        v = values.index_select(0, row.index_select(0, live) + feature.index_select(0, at))
        s = split.index_select(0, at)
        if only_leq:
            go = v <= s
        else:
            go = ((m == 0) & (v <= s)) | ((m == 1) & (v < s)) | ((m == 2) & (v >= s))
            go = go | ((m == 3) & (v > s)) | ((m == 4) & (v == s)) | ((m == 5) & (v != s))
            if members is not None:
                go = go | ((m == 6) & (v.unsqueeze(-1) == members.index_select(0, at)).any(-1))
        if track_missing:
            go = go | (missing_true.index_select(0, at) & torch.isnan(v))
        node.index_copy_(0, live, torch.where(go, true_id.index_select(0, at), false_id.index_select(0, at)))
    return node.reshape(n, t)


def _aggregate(values: Tensor, has: Tensor, leaves: Tensor, function: str) -> Tensor:
    """Combines the leaf values [G, K] (present where ``has``) reached in each tree [N, T] into [N, K]."""
    reached = values.index_select(0, leaves.reshape(-1)).reshape(leaves.shape[0], leaves.shape[1], -1)  # [N, T, K]
    if function == "SUM":
        return reached.sum(1)
    if function == "AVERAGE":
        return reached.sum(1) / leaves.shape[1]
    # MIN/MAX over the trees that give the target a value; 0 where none does (as onnxruntime).
    present = has.index_select(0, leaves.reshape(-1)).reshape(reached.shape)
    if function == "MIN":
        best = torch.where(present, reached, torch.full_like(reached, float("inf"))).amin(1)
    elif function == "MAX":
        best = torch.where(present, reached, torch.full_like(reached, float("-inf"))).amax(1)
    else:
        raise RuntimeError("unknown aggregate_function " + function)
    return torch.where(present.any(1), best, torch.zeros_like(best))


def _mode_code(mode: str) -> int:
    if mode == "BRANCH_LEQ":
        return 0
    if mode == "BRANCH_LT":
        return 1
    if mode == "BRANCH_GTE":
        return 2
    if mode == "BRANCH_GT":
        return 3
    if mode == "BRANCH_EQ":
        return 4
    if mode == "BRANCH_NEQ":
        return 5
    if mode == "LEAF":
        return 7
    raise RuntimeError("unknown tree node mode " + mode)


def _find(keys: Tensor, order: Tensor, width: int, tree: Tensor, node: Tensor) -> Tensor:
    """Positions of the nodes ``(tree, node)`` (elementwise), by binary search on ``tree * width + node``."""
    pos = torch.searchsorted(keys, tree * width + node).clamp_max(order.shape[0] - 1)
    return order.index_select(0, pos.reshape(-1)).reshape(pos.shape)


def _ids(values: list[int], like: Tensor) -> Tensor:
    return torch.tensor(values, dtype=torch.int64, device=like.device)


def _forest_leaves(
    x: Tensor,
    treeids: list[int],
    nodeids: list[int],
    featureids: list[int],
    modes: list[str],
    splits: Tensor,
    trueids: list[int],
    falseids: list[int],
    missing: list[int] | None,
    entry_trees: list[int],
    entry_nodes: list[int],
) -> tuple[Tensor, Tensor]:
    """For TreeEnsembleRegressor/Classifier (ml opsets 1, 3): the node [N, T] each sample
    reaches in each tree, and the node of each (tree id, node id) target entry.

    Nodes are numbered by their position in the attributes; a tree's root is its
    first listed node.
    """
    tree, node = _ids(treeids, x), _ids(nodeids, x)
    width = int(node.max()) + 1
    keys, order = torch.sort(tree * width + node)
    mode = torch.tensor([_mode_code(m) for m in modes], dtype=torch.int64, device=x.device)
    leaf = mode == 7
    here = torch.arange(len(treeids), device=x.device)
    true_id = torch.where(leaf, here, _find(keys, order, width, tree, _ids(trueids, x)))
    false_id = torch.where(leaf, here, _find(keys, order, width, tree, _ids(falseids, x)))
    flags: list[int] = [0] * len(treeids) if missing is None else missing
    _, which = torch.unique(tree, return_inverse=True)
    roots = torch.full([int(which.max()) + 1], len(treeids), dtype=torch.int64, device=x.device)
    roots = roots.scatter_reduce(0, which, here, "amin")
    leaves = _descend(x, roots, _ids(featureids, x), splits.to(x.device), mode, true_id, false_id,
                      _ids(flags, x) != 0, None)
    return leaves, _find(keys, order, width, _ids(entry_trees, x), _ids(entry_nodes, x))


def _leaf_table(size: int, at: Tensor, target: Tensor, weights: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """Leaf values [size, k] (float64) summed from (node, target, weight) entries, and where any is given."""
    values = torch.zeros([size, k], dtype=torch.float64, device=at.device)
    values.index_put_((at, target), weights.to(at.device, torch.float64), accumulate=True)
    has = torch.zeros([size, k], dtype=torch.bool, device=at.device)
    has.index_put_((at, target), torch.ones_like(at, dtype=torch.bool))
    return values, has


def _attr_tensor(tensor: Tensor | None, values: list[float] | None, like: Tensor) -> Tensor:
    """The ``*_as_tensor`` attribute when given (opset 3), else the float list."""
    return tensor.to(like.device) if tensor is not None else _floats(values, like)


@TORCH.register(_ML + "TreeEnsembleRegressor", since=1)
@TORCH.register(_ML + "TreeEnsembleRegressor", since=3)
def tree_ensemble_regressor(
    x: Tensor,
    aggregate_function: str = "SUM",
    base_values: list[float] | None = None,
    base_values_as_tensor: Tensor | None = None,
    n_targets: int = 1,
    nodes_falsenodeids: list[int] | None = None,
    nodes_featureids: list[int] | None = None,
    nodes_hitrates: list[float] | None = None,
    nodes_hitrates_as_tensor: Tensor | None = None,
    nodes_missing_value_tracks_true: list[int] | None = None,
    nodes_modes: list[str] | None = None,
    nodes_nodeids: list[int] | None = None,
    nodes_treeids: list[int] | None = None,
    nodes_truenodeids: list[int] | None = None,
    nodes_values: list[float] | None = None,
    nodes_values_as_tensor: Tensor | None = None,
    post_transform: str = "NONE",
    target_ids: list[int] | None = None,
    target_nodeids: list[int] | None = None,
    target_treeids: list[int] | None = None,
    target_weights: list[float] | None = None,
    target_weights_as_tensor: Tensor | None = None,
) -> Tensor:
    assert nodes_treeids is not None and nodes_nodeids is not None and nodes_featureids is not None
    assert nodes_modes is not None and nodes_truenodeids is not None and nodes_falsenodeids is not None
    assert target_treeids is not None and target_nodeids is not None and target_ids is not None
    leaves, at = _forest_leaves(x, nodes_treeids, nodes_nodeids, nodes_featureids, nodes_modes,
                                _attr_tensor(nodes_values_as_tensor, nodes_values, x), nodes_truenodeids,
                                nodes_falsenodeids, nodes_missing_value_tracks_true, target_treeids, target_nodeids)
    weights = _attr_tensor(target_weights_as_tensor, target_weights, x)
    values, has = _leaf_table(len(nodes_treeids), at, _ids(target_ids, x), weights, n_targets)
    scores = _aggregate(values, has, leaves, aggregate_function)
    if base_values is not None or base_values_as_tensor is not None:
        scores = scores + _attr_tensor(base_values_as_tensor, base_values, x).to(torch.float64)
    return _post_transform(scores.to(torch.float32), post_transform)


@TORCH.register(_ML + "TreeEnsembleClassifier", since=1)
@TORCH.register(_ML + "TreeEnsembleClassifier", since=3)
def tree_ensemble_classifier(
    x: Tensor,
    base_values: list[float] | None = None,
    base_values_as_tensor: Tensor | None = None,
    class_ids: list[int] | None = None,
    class_nodeids: list[int] | None = None,
    class_treeids: list[int] | None = None,
    class_weights: list[float] | None = None,
    class_weights_as_tensor: Tensor | None = None,
    classlabels_int64s: list[int] | None = None,
    classlabels_strings: list[str] | None = None,
    nodes_falsenodeids: list[int] | None = None,
    nodes_featureids: list[int] | None = None,
    nodes_hitrates: list[float] | None = None,
    nodes_hitrates_as_tensor: Tensor | None = None,
    nodes_missing_value_tracks_true: list[int] | None = None,
    nodes_modes: list[str] | None = None,
    nodes_nodeids: list[int] | None = None,
    nodes_treeids: list[int] | None = None,
    nodes_truenodeids: list[int] | None = None,
    nodes_values: list[float] | None = None,
    nodes_values_as_tensor: Tensor | None = None,
    post_transform: str = "NONE",
) -> tuple[Tensor, Tensor]:
    _no_strings("TreeEnsembleClassifier", classlabels_strings)
    assert nodes_treeids is not None and nodes_nodeids is not None and nodes_featureids is not None
    assert nodes_modes is not None and nodes_truenodeids is not None and nodes_falsenodeids is not None
    assert class_treeids is not None and class_nodeids is not None and class_ids is not None
    assert classlabels_int64s is not None
    leaves, at = _forest_leaves(x, nodes_treeids, nodes_nodeids, nodes_featureids, nodes_modes,
                                _attr_tensor(nodes_values_as_tensor, nodes_values, x), nodes_truenodeids,
                                nodes_falsenodeids, nodes_missing_value_tracks_true, class_treeids, class_nodeids)
    n_classes = len(classlabels_int64s)
    weights = _attr_tensor(class_weights_as_tensor, class_weights, x)
    values, has = _leaf_table(len(nodes_treeids), at, _ids(class_ids, x), weights, max(n_classes, 2))
    scores = _aggregate(values, has, leaves, "SUM")[:, : max(n_classes, 1)]
    if base_values is not None or base_values_as_tensor is not None:
        scores = scores + _attr_tensor(base_values_as_tensor, base_values, x).to(torch.float64).reshape(1, -1)
    if min(class_ids) == max(class_ids):  # binary: one score s for the second class becomes [1 - s or -s, s]
        s = scores[:, :1]
        rest = 1.0 - s if post_transform == "NONE" or post_transform == "PROBIT" else -s
        scores = torch.cat([rest, s], 1)
    scores = _post_transform(scores.to(torch.float32), post_transform)
    index = scores.argmax(1)
    if n_classes == 1:
        return index, scores
    return torch.tensor(classlabels_int64s, dtype=torch.int64, device=x.device)[index], scores


def _children(ids: list[int], leafs: list[int], leaf_pos: Tensor) -> Tensor:
    """TreeEnsemble-5 child ids in the flat tables (leaf ``i`` sits at ``leaf_pos[i]``), leaves their own."""
    to = torch.tensor(ids, dtype=torch.int64, device=leaf_pos.device)
    is_leaf = torch.tensor(leafs, device=leaf_pos.device) != 0
    return torch.cat([torch.where(is_leaf, leaf_pos[0] + to, to), leaf_pos])


def _members(mode: Tensor, values: Tensor | None, count: int) -> Tensor | None:
    """The value sets of MEMBER nodes as a [count, S] table padded with NaN (NaN ends each set)."""
    if values is None or not bool((mode == 6).any()):
        return None
    flat = values.reshape(-1)
    ends = torch.isnan(flat)
    group = torch.cumsum(ends.to(torch.int64), 0) - ends.to(torch.int64)  # the set each value belongs to
    starts = torch.cat([torch.zeros(1, dtype=torch.int64, device=flat.device), torch.nonzero(ends).reshape(-1) + 1])
    column = torch.arange(flat.shape[0], device=flat.device) - starts[group]
    keep = ~ends
    table = torch.full([count, int(column.max()) + 1], float("nan"), dtype=flat.dtype, device=flat.device)
    owner = torch.nonzero(mode == 6).reshape(-1)
    table[owner[group[keep]], column[keep]] = flat[keep]
    return table


@TORCH.register(_ML + "TreeEnsemble", since=5)
def tree_ensemble(
    x: Tensor,
    aggregate_function: int = 1,
    leaf_targetids: list[int] | None = None,
    leaf_weights: Tensor | None = None,
    membership_values: Tensor | None = None,
    n_targets: int | None = None,
    nodes_falseleafs: list[int] | None = None,
    nodes_falsenodeids: list[int] | None = None,
    nodes_featureids: list[int] | None = None,
    nodes_hitrates: Tensor | None = None,
    nodes_missing_value_tracks_true: list[int] | None = None,
    nodes_modes: Tensor | None = None,
    nodes_splits: Tensor | None = None,
    nodes_trueleafs: list[int] | None = None,
    nodes_truenodeids: list[int] | None = None,
    post_transform: int = 0,
    tree_roots: list[int] | None = None,
) -> Tensor:
    assert nodes_modes is not None and nodes_splits is not None and leaf_weights is not None
    assert leaf_targetids is not None and tree_roots is not None and nodes_featureids is not None
    assert nodes_truenodeids is not None and nodes_falsenodeids is not None
    assert nodes_trueleafs is not None and nodes_falseleafs is not None
    dev = x.device
    n_nodes, n_leaves = len(nodes_featureids), len(leaf_targetids)
    size = n_nodes + n_leaves  # leaves follow the interior nodes in the flat tables
    leaf_pos = torch.arange(n_nodes, size, device=dev)
    mode = torch.cat([nodes_modes.to(dev, torch.int64), torch.full([n_leaves], 7, dtype=torch.int64, device=dev)])

    split_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    split = torch.cat([nodes_splits.to(dev, split_dtype), torch.zeros([n_leaves], dtype=split_dtype, device=dev)])
    feature = torch.cat([torch.tensor(nodes_featureids, dtype=torch.int64, device=dev),
                         torch.zeros([n_leaves], dtype=torch.int64, device=dev)])
    flags: list[int] = [0] * n_nodes if nodes_missing_value_tracks_true is None else nodes_missing_value_tracks_true
    missing = torch.cat([torch.tensor(flags, device=dev) != 0, torch.zeros([n_leaves], dtype=torch.bool, device=dev)])
    sets = None if membership_values is None else membership_values.to(dev, split_dtype)
    members = _members(mode, sets, size)
    roots = torch.tensor(tree_roots, dtype=torch.int64, device=dev)
    true_id = _children(nodes_truenodeids, nodes_trueleafs, leaf_pos)
    false_id = _children(nodes_falsenodeids, nodes_falseleafs, leaf_pos)
    leaves = _descend(x, roots, feature, split, mode, true_id, false_id, missing, members)
    k = n_targets if n_targets is not None else max(leaf_targetids) + 1
    values, has = _leaf_table(size, leaf_pos, _ids(leaf_targetids, x), leaf_weights, k)
    function = ["AVERAGE", "SUM", "MIN", "MAX"][aggregate_function]
    scores = _aggregate(values, has, leaves, function).to(x.dtype if x.is_floating_point() else torch.float32)
    return _post_transform(scores, _transform_name(post_transform))
