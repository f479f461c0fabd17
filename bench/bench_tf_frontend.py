"""Time crossgraph's TensorFlow front end against tf2onnx's ``from_function`` alone.

Both start from the same live Keras model (loaded from ``fixtures/models/tf``)
and trace it afresh each round; crossgraph adds the op check and repairs, the
opset upgrade to 21, dim naming (a second trace and an ONNX shape inference),
provenance and ``ir.verify``. Prints the median of several rounds and the ratio.

    .venv/bin/python bench/bench_tf_frontend.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

FIXTURES = ["cnn.keras", "transformer.keras"]


def tf2onnx_alone(model) -> None:
    """tf2onnx on the same traced function crossgraph builds (its newest opset, 18)."""
    import logging

    import tensorflow as tf
    import tf2onnx

    logging.getLogger("tf2onnx").setLevel(logging.CRITICAL)
    sig = [tf.TensorSpec(t.shape, t.dtype, name=t.name) for t in model.inputs]

    def call(*args):
        return {"output_0": model(args[0] if len(args) == 1 else list(args), training=False)}

    tf2onnx.convert.from_function(tf.function(call, input_signature=sig), input_signature=sig, opset=18)


def crossgraph_front_end(model) -> None:
    from converter.frontends import tensorflow as tf_frontend

    tf_frontend.load(model, format="tf")


def median_seconds(fn, model, rounds: int) -> float:
    fn(model)  # warm-up: first-call imports and graph-building caches
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(model)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import keras

    print(f"{'model':20s} {'tf2onnx (s)':>12s} {'crossgraph (s)':>15s} {'ratio':>7s}")
    for name in FIXTURES:
        model = keras.models.load_model(REPO / "fixtures" / "models" / "tf" / name, compile=False)
        base = median_seconds(tf2onnx_alone, model, args.rounds)
        ours = median_seconds(crossgraph_front_end, model, args.rounds)
        print(f"{name:20s} {base:12.3f} {ours:15.3f} {ours / base:7.2f}x")


if __name__ == "__main__":
    main()
