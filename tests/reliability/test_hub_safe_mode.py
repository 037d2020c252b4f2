"""Safe-mode loading never runs a SavedModel the user did not trust (issue 14, item 7).

A `.keras` file holds only the handle of its `HubBackbone`; loading it loads
that SavedModel and runs its graph. The planted SavedModel here writes a
marker file whenever its graph runs, as the attack in the issue did.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl
from kerastl.backbones.hub import HubBackbone
from kerastl.backbones.hub_handles import TRUST_ENV, trusted_hub_models

pytestmark = pytest.mark.timeout(300)
SIZE = 8


class _Planted(tf.__internal__.tracking.AutoTrackable):
    def __init__(self, marker):
        super().__init__()
        self._marker = marker
        self._kernel = tf.Variable(tf.ones((3, 4)), name="kernel")
        self.variables = [self._kernel]
        self.trainable_variables = [self._kernel]
        self.regularization_losses = []
        self.__call__.get_concrete_function(tf.TensorSpec([None, SIZE, SIZE, 3]), training=False)

    @tf.function
    def __call__(self, images, training=False):
        tf.io.write_file(self._marker, "the planted graph ran")
        return tf.matmul(tf.reduce_mean(images, axis=[1, 2]), self._kernel)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    marker = root / "marker.txt"
    saved_model = root / "saved_model"
    tf.saved_model.save(_Planted(str(marker)), str(saved_model))
    inputs = keras.Input((SIZE, SIZE, 3))
    outputs = keras.layers.Dense(2)(HubBackbone(str(saved_model), input_shape=(SIZE, SIZE, 3))(
        inputs))
    model_file = root / "model.keras"
    keras.Model(inputs, outputs).save(model_file)
    marker.unlink()
    return model_file, saved_model, marker


@pytest.mark.parametrize("loader", ["kerastl", "keras"])
def test_safe_mode_refuses_an_untrusted_local_savedmodel(planted, loader, monkeypatch):
    model_file, saved_model, marker = planted
    monkeypatch.delenv(TRUST_ENV, raising=False)
    load = (kerastl.load if loader == "kerastl" else keras.saving.load_model)
    with pytest.raises(ValueError, match="disallowed in safe mode") as err:
        load(model_file)
    message = str(err.value)
    assert str(saved_model) in message and "trusted_hub_models" in message
    assert TRUST_ENV in message and "safe_mode=False" in message
    assert not marker.exists()


def test_trusted_savedmodels_load(planted, monkeypatch):
    model_file, saved_model, marker = planted
    monkeypatch.delenv(TRUST_ENV, raising=False)
    x = np.ones((1, SIZE, SIZE, 3), "float32")
    for load in (lambda: kerastl.load(model_file, trusted_hub_models=[saved_model]),
                 lambda: kerastl.load(model_file, trusted_hub_models=saved_model.parent),
                 lambda: kerastl.load(model_file, safe_mode=False)):
        assert load()(x).shape == (1, 2)
    with trusted_hub_models(saved_model):
        assert keras.saving.load_model(model_file)(x).shape == (1, 2)
    monkeypatch.setenv(TRUST_ENV, str(saved_model))
    assert kerastl.load(model_file)(x).shape == (1, 2)
    assert marker.exists()  # trusted, it does run


def test_trust_is_exact_and_scoped(planted, tmp_path, monkeypatch):
    model_file, saved_model, _ = planted
    monkeypatch.delenv(TRUST_ENV, raising=False)
    (tmp_path / "saved_model_other").mkdir()
    for trusted in (tmp_path / "saved_model_other", str(saved_model) + "_x"):
        with pytest.raises(ValueError, match="disallowed in safe mode"):
            kerastl.load(model_file, trusted_hub_models=[trusted])
    with trusted_hub_models(saved_model):
        pass
    with pytest.raises(ValueError, match="disallowed in safe mode"):
        kerastl.load(model_file)
