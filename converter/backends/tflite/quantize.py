"""Weight precision: the TFLite converter's settings per ``--quantize`` mode, and int8 calibration data."""

from __future__ import annotations

import os
import pathlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

import ir
from converter.errors import InputError

QUANTIZE_MODES = ("fp16", "dynamic-int8", "int8")


def check_quantize(quantize: str | None, data: str | os.PathLike | None) -> None:
    """Refuse an unknown mode, int8 without calibration data, or data for another mode.

    Raises:
        InputError: naming the problem and what to give instead.
    """
    if quantize is not None and quantize not in QUANTIZE_MODES:
        raise InputError(f"unknown --quantize mode {quantize!r}", f"use one of {', '.join(QUANTIZE_MODES)}")
    if quantize == "int8" and data is None:
        raise InputError("--quantize int8 needs calibration data", "give a .npz of input arrays (representative_data)")
    if data is not None and quantize != "int8":
        raise InputError("representative data is only used by --quantize int8")


def configure(converter: Any, quantize: str | None, representative: Callable[[], Iterator[dict]] | None,
              allow_tf_ops: bool) -> None:
    """Set a ``tf.lite.TFLiteConverter``'s optimizations, types and op sets for ``quantize``."""
    import tensorflow as tf

    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.representative_dataset = representative
    if allow_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops


def representative(data: str | os.PathLike | None, model: ir.Model,
                   layouts: Mapping[str, Any]) -> Callable[[], Iterator[dict]] | None:
    """A representative-dataset generator over a ``.npz`` (one sample at a time, in the file's layout).

    Raises:
        InputError: no such file, or it lacks an array for some input.
    """
    if data is None:
        return None
    from converter.backends.savedmodel import sanitize_names

    path = pathlib.Path(data)
    if not path.is_file():
        raise InputError(f"{path}: no such calibration file", "give a .npz of input arrays, samples on axis 0")
    feeds = [v for v in model.graph.inputs if not v.is_initializer()]
    names = sanitize_names([v.name for v in feeds])
    with np.load(path, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    missing = [v.name for v in feeds if v.name not in arrays]
    if missing:
        raise InputError(f"{path}: no arrays for input(s) {', '.join(missing)}", f"it holds {', '.join(arrays) or 'none'}")
    count = min(len(arrays[v.name]) for v in feeds)
    perms = layouts.get("inputs", {}) if layouts else {}

    def samples() -> Iterator[dict[str, np.ndarray]]:
        for i in range(count):
            sample = {}
            for v in feeds:
                x = arrays[v.name][i:i + 1]
                sample[names[v.name]] = np.transpose(x, perms[v.name]) if v.name in perms else x
            yield sample

    return samples
