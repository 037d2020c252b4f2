"""Tests of the strategy helpers (kerastl/distribute/helpers.py).

TPU behaviour is checked without a TPU: `is_tpu` recognises TPU strategies by
class name, as Keras does, so a small stand-in class named ``TPUStrategy``
(and uninitialized instances of TensorFlow's real TPU classes) exercise it.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerastl.distribute as kd
from harness import assert_float32_close
from kerastl.distribute.strategies import _MultiWorkerMirroredStrategy


class TPUStrategy:
    """Stand-in for a TPU strategy with 8 cores (no TPU needed)."""

    num_replicas_in_sync = 8


class FourReplicas:
    """Stand-in for a 4-replica GPU strategy."""

    num_replicas_in_sync = 4


def _uninitialized(cls):
    return cls.__new__(cls)  # the class is all `is_tpu`/`is_multi_worker` look at


def _dataset(n=10, batch=4, drop_remainder=False):
    images = np.zeros((n, 8, 8, 3), "float32")
    labels = np.arange(n, dtype="int64")
    return tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch, drop_remainder)


def _batch_dims(dataset):
    return {spec.shape[0] for spec in tf.nest.flatten(dataset.element_spec)}


# --- scope and replica arithmetic ---------------------------------------------------------

def test_scope_enters_the_strategy_or_nothing():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with kd.scope(strategy):
        assert tf.distribute.get_strategy() is strategy
    with kd.scope(None):
        assert not tf.distribute.has_strategy()
    with pytest.raises(TypeError, match=r"`strategy` must be a tf.distribute.Strategy .* "
                                        r"Received: strategy='mirrored'"):
        kd.scope("mirrored")


def test_num_replicas_and_global_batch():
    assert kd.num_replicas(None) == 1
    assert kd.num_replicas(TPUStrategy()) == 8
    assert kd.global_batch_size(32, TPUStrategy()) == 256
    assert kd.global_batch_size(32, None) == 32
    one_device = tf.distribute.OneDeviceStrategy("/cpu:0")
    with one_device.scope():
        assert kd.num_replicas(None) == 1  # None is the strategy in scope


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "32"])
def test_global_batch_rejects_bad_sizes(bad):
    with pytest.raises(ValueError, match=r"`per_replica_batch` must be an integer >= 1\. "
                                         r"Received: per_replica_batch="):
        kd.global_batch_size(bad, None)


def test_scale_learning_rate_linear_rule():
    assert kd.scale_learning_rate(1e-3, TPUStrategy()) == pytest.approx(8e-3)
    assert kd.scale_learning_rate(1e-3, FourReplicas(), rule="none") == 1e-3
    assert kd.scale_learning_rate(1e-3, None) == pytest.approx(1e-3)
    # Tuned for a global batch of 256; now 4 replicas x 128 = 512: twice the rate.
    assert kd.scale_learning_rate(0.1, FourReplicas(), per_replica_batch=128,
                                  base_batch=256) == pytest.approx(0.2)
    assert kd.scale_learning_rate(0.1, None, per_replica_batch=16,
                                  base_batch=64) == pytest.approx(0.025)


def test_scale_learning_rate_checks_its_arguments():
    with pytest.raises(ValueError, match=r"`rule` must be one of 'linear', 'none'\. "
                                         r"Did you mean 'linear'"):
        kd.scale_learning_rate(0.1, None, rule="lineer")
    with pytest.raises(ValueError, match=r"`per_replica_batch` is needed with `base_batch`"):
        kd.scale_learning_rate(0.1, None, base_batch=256)
    with pytest.raises(ValueError, match=r"`learning_rate` must be a number > 0"):
        kd.scale_learning_rate(0.0, None)
    with pytest.raises(ValueError, match=r"`base_batch` must be an integer >= 1"):
        kd.scale_learning_rate(0.1, None, per_replica_batch=8, base_batch=0)


def test_describe():
    assert kd.describe(None) == "default strategy (1 replica)"
    assert kd.describe(tf.distribute.OneDeviceStrategy("/cpu:0")) == "OneDeviceStrategy (1 replica)"
    assert kd.describe(TPUStrategy()) == "TPUStrategy (8 replicas)"


# --- TPU recognition and settings ------------------------------------------------------------

def test_is_tpu_recognises_tensorflow_tpu_classes_only():
    assert kd.is_tpu(_uninitialized(tf.distribute.TPUStrategy))
    assert kd.is_tpu(_uninitialized(tf.distribute.experimental.TPUStrategy))
    assert kd.is_tpu(TPUStrategy())
    assert not kd.is_tpu(None)
    assert not kd.is_tpu(tf.distribute.get_strategy())
    assert not kd.is_tpu(tf.distribute.OneDeviceStrategy("/cpu:0"))
    assert not kd.is_tpu(_uninitialized(tf.distribute.MirroredStrategy))
    assert not kd.is_tpu(_uninitialized(_MultiWorkerMirroredStrategy))


def test_compile_options_for_tpu_and_elsewhere():
    tpu = kd.compile_options(TPUStrategy())
    assert tpu == {"steps_per_execution": kd.TPU_STEPS_PER_EXECUTION, "jit_compile": False}
    assert tpu["steps_per_execution"] > 1
    assert kd.compile_options(None) == {"steps_per_execution": 1, "jit_compile": "auto"}
    # The dicts are valid keras.Model.compile arguments.
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse", **tpu)
    assert model.steps_per_execution == 32
    model.compile(optimizer="sgd", loss="mse", **kd.compile_options(None))
    assert model.steps_per_execution == 1


def test_default_dtype_policy():
    assert kd.default_dtype_policy(TPUStrategy()) == "mixed_bfloat16"
    assert keras.DTypePolicy(kd.default_dtype_policy(TPUStrategy())).compute_dtype == "bfloat16"
    assert kd.default_dtype_policy(None) is None
    assert kd.default_dtype_policy(FourReplicas()) is None


def test_prepare_dataset_gives_tpu_training_batches_a_static_size():
    dataset = _dataset(n=10, batch=4)
    assert _batch_dims(dataset) == {None}
    prepared = kd.prepare_dataset(dataset, TPUStrategy(), training=True, batch_size=4)
    assert _batch_dims(prepared) == {4}
    assert kd.static_batch_size(prepared) == 4
    labels = [y.numpy().tolist() for _, y in prepared]
    assert labels == [[0, 1, 2, 3], [4, 5, 6, 7]]  # the partial batch is dropped
    regrouped = kd.prepare_dataset(dataset, TPUStrategy(), training=True, batch_size=8)
    assert _batch_dims(regrouped) == {8}
    assert [y.numpy().tolist() for _, y in regrouped] == [list(range(8))]


def test_prepare_dataset_keeps_what_needs_no_change():
    dataset = _dataset()
    assert kd.prepare_dataset(dataset, TPUStrategy(), training=False) is dataset
    assert kd.prepare_dataset(dataset, None, training=True) is dataset
    assert kd.prepare_dataset(dataset, FourReplicas(), training=True, batch_size=4) is dataset
    static = _dataset(drop_remainder=True)
    assert kd.prepare_dataset(static, TPUStrategy(), training=True) is static
    assert kd.prepare_dataset(static, TPUStrategy(), training=True, batch_size=4) is static


def test_prepare_dataset_asks_for_the_batch_size_on_tpu():
    with pytest.raises(ValueError, match=r"On TPU the training batches need a static size: "
                                         r"pass `batch_size=`"):
        kd.prepare_dataset(_dataset(), TPUStrategy(), training=True)
    with pytest.raises(TypeError, match=r"`dataset` must be a tf.data.Dataset"):
        kd.prepare_dataset(np.zeros((4, 2)), None, training=True)
    with pytest.raises(ValueError, match=r"`batch_size` must be an integer >= 1"):
        kd.prepare_dataset(_dataset(), TPUStrategy(), training=True, batch_size=0)
    with pytest.raises(ValueError, match=r"`training` must be True or False"):
        kd.prepare_dataset(_dataset(), None, training="yes")


def test_prepare_dataset_shards_by_data_under_multi_worker():
    policy = tf.data.experimental.AutoShardPolicy
    strategy = _uninitialized(_MultiWorkerMirroredStrategy)
    assert kd.is_multi_worker(strategy)
    assert not kd.is_multi_worker(tf.distribute.get_strategy())
    prepared = kd.prepare_dataset(_dataset(), strategy, training=True)
    assert prepared.options().experimental_distribute.auto_shard_policy == policy.DATA
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.FILE
    chosen = _dataset().with_options(options)
    kept = kd.prepare_dataset(chosen, strategy, training=False)
    assert kept.options().experimental_distribute.auto_shard_policy == policy.FILE


def test_static_batch_size():
    assert kd.static_batch_size(_dataset()) is None
    assert kd.static_batch_size(_dataset(drop_remainder=True)) == 4
    assert kd.static_batch_size(tf.data.Dataset.range(3)) is None  # scalars: no batch dim


# --- BatchNormalization across replicas ------------------------------------------------------

def test_synchronize_batch_norm_reaches_nested_layers():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization()], name="inner")
    inputs = keras.Input((4,))
    outputs = keras.layers.BatchNormalization()(inner(inputs))
    model = keras.Model(inputs, outputs)
    assert kd.synchronize_batch_norm(model) == 2
    norms = [inner.layers[-1], model.layers[-1]]
    assert all(layer.synchronized and layer.get_config()["synchronized"] for layer in norms)
    assert kd.synchronize_batch_norm(model) == 0
    # Outside any strategy a synchronized layer normalizes as before.
    x = np.random.default_rng(0).normal(size=(8, 4)).astype("float32")
    out = keras.ops.convert_to_numpy(model(x, training=True))
    # Normalized over 8 rows: mean, variance, scale, mean again (float32).
    assert_float32_close(out.mean(axis=0), np.zeros(4), depth=4, terms=8,
                         scale=np.abs(out).max())
    with pytest.raises(TypeError, match=r"`model` must be a keras.Model"):
        kd.synchronize_batch_norm(keras.layers.Dense(2))
