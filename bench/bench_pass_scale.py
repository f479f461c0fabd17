"""How the pass pipeline's time grows with graph size: it must be about linear.

Synthetic graphs of small tensors (``float[4, 8]``), so time goes to the passes
and not to arithmetic:

- ``chain``: one long chain of blocks ``Identity, Transpose, Transpose, MatMul(W),
  Add(b), Relu, Reshape, Reshape`` (8 nodes; each block has its own weights);
- ``wide``: a wide DAG, branches ``Mul(c), Transpose, Sigmoid, Transpose, Relu``
  off one input, summed pairwise in a tree of ``Add`` (6 nodes per branch).

For each shape, size (1k, 10k, 100k nodes) and level (-O1, -O2): the wall and
CPU seconds ``passes.optimize`` takes and, per decade of size, the ratio of CPU
times (10 is linear, 100 quadratic).

    .venv/bin/python bench/bench_pass_scale.py [--sizes 1000 10000 100000] [--profile N]
"""

from __future__ import annotations

import argparse
import cProfile
import pathlib
import pstats
import sys
import time

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import ir  # noqa: E402
import passes  # noqa: E402

SHAPE = (4, 8)


def _tensor_value(graph: ir.Graph, name: str, array: np.ndarray) -> ir.Value:
    value = ir.Value(name=name, const_value=ir.tensor(array, name=name))
    value.shape, value.dtype = ir.Shape(array.shape), ir.DataType.from_numpy(array.dtype)
    graph.register_initializer(value)
    return value


def _node(graph: ir.Graph, op_type: str, inputs, **attrs) -> ir.Value:
    node = ir.node(op_type, inputs, attributes=attrs or None)
    graph.append(node)
    return node.outputs[0]


def _model(graph: ir.Graph) -> ir.Model:
    return ir.Model(graph, ir_version=10)


def _graph(name: str) -> tuple[ir.Graph, ir.Value]:
    x = ir.Value(name="x", shape=ir.Shape(SHAPE), type=ir.TensorType(ir.DataType.FLOAT))
    graph = ir.Graph([x], [], nodes=[], opset_imports={"": 21}, name=name)
    return graph, x


def chain_model(nodes: int, seed: int = 0) -> ir.Model:
    """A chain of ``nodes // 8`` blocks of 8 nodes (see the module docstring)."""
    rng = np.random.default_rng(seed)
    graph, v = _graph("chain")
    flat = _tensor_value(graph, "flat", np.array([SHAPE[0] * SHAPE[1]], dtype=np.int64))
    square = _tensor_value(graph, "square", np.array(SHAPE, dtype=np.int64))
    for i in range(max(1, nodes // 8)):
        w = _tensor_value(graph, f"w{i}", rng.standard_normal((8, 8)).astype(np.float32) / 3)
        b = _tensor_value(graph, f"b{i}", rng.standard_normal(8).astype(np.float32))
        v = _node(graph, "Identity", [v])
        v = _node(graph, "Transpose", [v], perm=[1, 0])
        v = _node(graph, "Transpose", [v], perm=[1, 0])
        v = _node(graph, "MatMul", [v, w])
        v = _node(graph, "Add", [v, b])
        v = _node(graph, "Relu", [v])
        v = _node(graph, "Reshape", [v, flat])
        v = _node(graph, "Reshape", [v, square])
    v.name = "y"
    graph.outputs.append(v)
    return _model(graph)


def wide_model(nodes: int, seed: int = 0) -> ir.Model:
    """``nodes // 6`` parallel branches off one input, summed in a tree of Add."""
    rng = np.random.default_rng(seed)
    graph, x = _graph("wide")
    level = []
    for i in range(max(2, nodes // 6)):
        c = _tensor_value(graph, f"c{i}", rng.standard_normal(SHAPE[1]).astype(np.float32))
        v = _node(graph, "Mul", [x, c])
        v = _node(graph, "Transpose", [v], perm=[1, 0])
        v = _node(graph, "Sigmoid", [v])
        v = _node(graph, "Transpose", [v], perm=[1, 0])
        level.append(_node(graph, "Relu", [v]))
    while len(level) > 1:
        pairs = [_node(graph, "Add", [a, b]) for a, b in zip(level[::2], level[1::2], strict=False)]
        level = pairs + level[len(pairs) * 2 :]
    level[0].name = "y"
    graph.outputs.append(level[0])
    return _model(graph)


SHAPES = {"chain": chain_model, "wide": wide_model}


def time_optimize(model: ir.Model, level: int) -> tuple[float, float, passes.PassReport]:
    """Wall and CPU seconds ``passes.optimize(model, level)`` takes, and its report.

    CPU time (this process's) is what the ratios use: on a shared machine wall
    time also counts other jobs.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    report = passes.optimize(model, level, on_error="raise")
    return time.perf_counter() - wall, time.process_time() - cpu, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--profile", type=int, default=0, help="cProfile one run of this size")
    args = parser.parse_args()
    if args.profile:
        for shape in args.shapes:
            for level in args.levels:
                model = SHAPES[shape](args.profile)
                print(f"\n== profile {shape} {args.profile} nodes -O{level}")
                with cProfile.Profile() as profile:
                    passes.optimize(model, level, on_error="raise")
                pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        return
    print(f"{'graph':<7}{'level':>6}{'nodes':>9}{'after':>8}{'wall s':>9}{'cpu s':>9}"
          f"{'cpu us/node':>12}{'x/decade':>10}")  # fmt: skip
    for shape in args.shapes:
        for level in args.levels:
            previous = None
            for size in args.sizes:
                model = SHAPES[shape](size)
                nodes = passes.count_nodes(model)
                wall, seconds, report = time_optimize(model, level)
                ratio = ""
                if previous is not None:
                    per_decade = (seconds / previous[1]) ** (1 / np.log10(nodes / previous[0]))
                    ratio = f"{per_decade:.1f}"
                print(f"{shape:<7}{'-O' + str(level):>6}{nodes:>9}{report.nodes_after:>8}{wall:>9.2f}"
                      f"{seconds:>9.2f}{seconds / nodes * 1e6:>12.1f}{ratio:>10}", flush=True)  # fmt: skip
                previous = (nodes, seconds)


if __name__ == "__main__":
    main()
