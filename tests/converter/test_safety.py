"""Safe loading: files that would run code are refused before anything loads them."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from typer.testing import CliRunner

import converter
from converter import safety
from converter.cli import app
from converter.errors import InputError

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


@pytest.fixture(scope="module")
def lambda_models(tmp_path_factory):
    out = tmp_path_factory.mktemp("lambda")
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense"),
                              keras.layers.Lambda(lambda x: x * 2, name="double")])
    model.save(out / "m.keras")
    model.save(out / "m.h5")
    return out


@pytest.mark.parametrize("name", ["m.keras", "m.h5"])
def test_keras_lambda_layer_is_refused_with_its_name(lambda_models, name):
    with pytest.raises(safety.UnsafeModelError) as e:
        converter.load(lambda_models / name)
    assert "Lambda 'double'" in str(e.value) and "--unsafe-load" in str(e.value)


def test_keras_lambda_loads_when_the_user_opts_in(lambda_models, tmp_path):
    result = converter.convert(lambda_models / "m.keras", tmp_path / "m.onnx", unsafe_load=True)
    assert result.parity.passed


def test_cli_refusal_is_one_line_exit_2(lambda_models, tmp_path):
    result = CliRunner().invoke(app, ["convert", str(lambda_models / "m.keras"), str(tmp_path / "o.onnx")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "Lambda 'double'" in result.stderr
    assert not (tmp_path / "o.onnx").exists()


def test_savedmodel_with_pyfunc_and_file_ops_is_refused_before_running(tmp_path):
    marker = tmp_path / "ran.txt"

    class Hostile(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32)])
        def __call__(self, x):
            y = tf.numpy_function(lambda a: a + 1, [x], tf.float32)
            tf.io.write_file(str(marker), "pwned")
            return {"y": y}

    tf.saved_model.save(Hostile(), str(tmp_path / "sm"))
    with pytest.raises(safety.UnsafeModelError) as e:
        converter.validate(tmp_path / "sm", tmp_path / "sm")
    message = str(e.value)
    assert "PyFunc" in message and "WriteFile" in message
    assert not marker.exists()


def test_safe_savedmodel_passes_the_scan(tmp_path):
    class Fine(tf.Module):
        def __init__(self):
            self.w = tf.Variable(np.ones(3, np.float32))

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32)])
        def __call__(self, x):
            return {"y": x * self.w}

    tf.saved_model.save(Fine(), str(tmp_path / "sm"))
    assert safety.tf_unsafe_ops(tmp_path / "sm", "savedmodel") == []


def test_zip_member_escaping_the_directory_is_refused(tmp_path):
    bad = tmp_path / "evil.keras"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("../../etc/evil", "x")
        z.writestr("config.json", "{}")
    with pytest.raises(InputError, match="escapes"):
        converter.load(bad)


def test_zip_bomb_is_refused(tmp_path):
    bomb = tmp_path / "bomb.keras"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("config.json", "{}")
        z.writestr("model.weights.h5", b"\0" * (200 * 2**20))
    with pytest.raises(InputError, match="zip bomb"):
        converter.load(bomb)
