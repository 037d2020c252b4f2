"""Helpers that make kerastl honour a `tf.distribute.Strategy`.

Create variables in the strategy's scope, size the global batch, scale the
learning rate, and apply the TPU specifics (static batch shapes, several steps
per execution, bfloat16). Every helper takes the strategy as an argument;
None means the current one (`tf.distribute.get_strategy()`).
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras
import tensorflow as tf

from kerastl._validation import check_bool, check_float, check_int, check_one_of

LR_RULES = ("linear", "none")
TPU_STEPS_PER_EXECUTION = 32


def _current(strategy):
    return tf.distribute.get_strategy() if strategy is None else strategy


def scope(strategy: tf.distribute.Strategy | None):
    """Returns `strategy.scope()`, or a context that does nothing for None.

    Args:
        strategy: A `tf.distribute.Strategy` or None.

    Returns:
        A context manager; create models, optimizers and metrics inside it.

    Example:
        >>> with kerastl.distribute.scope(strategy):
        ...     model = keras.Sequential([keras.layers.Dense(1)])
    """
    if strategy is None:
        return contextlib.nullcontext()
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(
            "`strategy` must be a tf.distribute.Strategy (see "
            f"kerastl.distribute.get_strategy) or None. Received: strategy={strategy!r}")
    return strategy.scope()


def num_replicas(strategy: tf.distribute.Strategy | None) -> int:
    """Returns how many replicas train in sync (1 for None outside any scope).

    Args:
        strategy: A strategy, or None for the current one.

    Returns:
        `strategy.num_replicas_in_sync`.

    Example:
        >>> kerastl.distribute.num_replicas(None)
        1
    """
    return int(_current(strategy).num_replicas_in_sync)


def global_batch_size(per_replica_batch: int, strategy: tf.distribute.Strategy | None) -> int:
    """Returns the global batch: ``per_replica_batch * num_replicas(strategy)``.

    kerastl's ``batch_size`` is per replica, so each device sees the same batch
    on one GPU or eight TPU cores; datasets are batched with the global size.

    Args:
        per_replica_batch: Examples per replica per step.
        strategy: A strategy, or None for the current one.

    Returns:
        The global batch size.

    Example:
        >>> kerastl.distribute.global_batch_size(32, strategy)  # 2 GPUs
        64
    """
    per_replica_batch = check_int("per_replica_batch", per_replica_batch, minimum=1)
    return per_replica_batch * num_replicas(strategy)


def scale_learning_rate(learning_rate: float, strategy: tf.distribute.Strategy | None, *,
                        rule: str = "linear", per_replica_batch: int | None = None,
                        base_batch: int | None = None) -> float:
    """Scales a learning rate for the global batch (the linear scaling rule).

    With ``rule="linear"`` the rate grows with the global batch (Goyal et al.,
    2017): ``learning_rate * global_batch / base_batch``. Without `base_batch`
    the rate is taken as tuned for one replica's batch, so the factor is the
    number of replicas. ``rule="none"`` returns `learning_rate` unchanged.

    Args:
        learning_rate: The rate tuned for `base_batch` (or one replica).
        strategy: A strategy, or None for the current one.
        rule: ``"linear"`` or ``"none"``.
        per_replica_batch: Examples per replica; needed with `base_batch`.
        base_batch: The global batch size `learning_rate` was tuned for.

    Returns:
        The scaled learning rate.

    Example:
        >>> kerastl.distribute.scale_learning_rate(1e-3, strategy)  # 8 TPU cores
        0.008
    """
    learning_rate = check_float("learning_rate", learning_rate, minimum=0, min_inclusive=False)
    check_one_of("rule", rule, LR_RULES)
    if rule == "none":
        return learning_rate
    if base_batch is None:
        return learning_rate * num_replicas(strategy)
    base_batch = check_int("base_batch", base_batch, minimum=1)
    if per_replica_batch is None:
        raise ValueError("`per_replica_batch` is needed with `base_batch`. "
                         f"Received: per_replica_batch=None, base_batch={base_batch}")
    return learning_rate * global_batch_size(per_replica_batch, strategy) / base_batch


def _is_tpu_class(cls) -> bool:
    return cls.__name__.startswith("TPUStrategy") or any(map(_is_tpu_class, cls.__bases__))


def is_tpu(strategy: Any) -> bool:
    """Returns True for a TPU strategy.

    Uses Keras's own test (a class named ``TPUStrategy*`` in the strategy's
    class hierarchy), so kerastl and `keras.Model.fit` agree.

    Args:
        strategy: A strategy or None.

    Returns:
        Whether `strategy` runs on TPUs.

    Example:
        >>> kerastl.distribute.is_tpu(tf.distribute.get_strategy())
        False
    """
    return strategy is not None and _is_tpu_class(type(strategy))


def is_multi_worker(strategy: Any) -> bool:
    """Returns True for a `MultiWorkerMirroredStrategy`."""
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def static_batch_size(dataset: tf.data.Dataset) -> int | None:
    """Returns the fixed leading (batch) dimension of `dataset`, or None."""
    specs = tf.nest.flatten(dataset.element_spec)
    sizes = {s.shape[0] if s.shape.rank else None for s in specs}
    return sizes.pop() if len(sizes) == 1 else None


def prepare_dataset(dataset: tf.data.Dataset, strategy: tf.distribute.Strategy | None, *,
                    training: bool, batch_size: int | None = None) -> tf.data.Dataset:
    """Adapts a batched dataset to `strategy`.

    - TPU and ``training=True``: batches get a static size (re-batched with
      ``drop_remainder=True``), as XLA on TPUs needs static shapes. Evaluation
      data keeps every example: dropping some would bias the metrics (a last
      partial batch costs one more XLA compilation).
    - Multi-worker: the auto-shard policy becomes ``DATA`` (unless it was set),
      so in-memory and file-list datasets split correctly between workers.
    - Otherwise the dataset is returned unchanged.

    Args:
        dataset: A batched `tf.data.Dataset` (global batches).
        strategy: A strategy, or None for the current one.
        training: Whether the dataset feeds training steps.
        batch_size: The global batch size; needed on TPU when the dataset's
            batch dimension is not static. When given, batches are re-cut to it.

    Returns:
        The adapted dataset.

    Example:
        >>> ds = kerastl.distribute.prepare_dataset(ds, strategy, training=True,
        ...                                         batch_size=64)
    """
    if not isinstance(dataset, tf.data.Dataset):
        raise TypeError(f"`dataset` must be a tf.data.Dataset. Received: dataset={dataset!r}")
    check_bool("training", training)
    strategy = _current(strategy)
    if is_multi_worker(strategy):
        dataset = _with_data_sharding(dataset)
    if not (is_tpu(strategy) and training):
        return dataset
    current = static_batch_size(dataset)
    if batch_size is None:
        if current is None:
            raise ValueError(
                "On TPU the training batches need a static size: pass `batch_size=` "
                "(the global batch) or batch the dataset with drop_remainder=True. "
                f"Received: batch_size=None, element_spec={dataset.element_spec}")
        return dataset
    batch_size = check_int("batch_size", batch_size, minimum=1)
    if current == batch_size:
        return dataset
    return dataset.rebatch(batch_size, drop_remainder=True)


def _with_data_sharding(dataset):
    policy = tf.data.experimental.AutoShardPolicy
    if dataset.options().experimental_distribute.auto_shard_policy != policy.AUTO:
        return dataset
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policy.DATA
    return dataset.with_options(options)


def compile_options(strategy: tf.distribute.Strategy | None) -> dict:
    """Returns `keras.Model.compile` settings suited to `strategy`.

    On TPU: ``steps_per_execution=32`` (one host round trip per 32 steps) and
    ``jit_compile=False`` (TPUStrategy already compiles each step with XLA).
    Elsewhere: ``steps_per_execution=1`` and Keras's ``jit_compile="auto"``.

    Args:
        strategy: A strategy, or None for the current one.

    Returns:
        A dict with ``steps_per_execution`` and ``jit_compile``.

    Example:
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
        ...               **kerastl.distribute.compile_options(strategy))
    """
    if is_tpu(_current(strategy)):
        return {"steps_per_execution": TPU_STEPS_PER_EXECUTION, "jit_compile": False}
    return {"steps_per_execution": 1, "jit_compile": "auto"}


def default_dtype_policy(strategy: tf.distribute.Strategy | None) -> str | None:
    """Returns ``"mixed_bfloat16"`` for TPU strategies, else None.

    The value to use when a training call's ``mixed_precision`` option is
    left to its default (``keras.mixed_precision.set_dtype_policy``).

    Example:
        >>> kerastl.distribute.default_dtype_policy(None)
    """
    return "mixed_bfloat16" if is_tpu(_current(strategy)) else None


def synchronize_batch_norm(model) -> int:
    """Makes every BatchNormalization layer of `model` use cross-replica statistics.

    A training BatchNormalization layer normalizes with the statistics of its
    batch; under a multi-replica strategy that is each replica's slice of the
    global batch, so results change with the replica count. Synchronized layers
    all-reduce the statistics (``synchronized=True``), so training matches one
    device with the global batch. Layers in inference mode are not affected.
    Call before the first `fit` (the step function reads the flag when traced).

    Args:
        model: A `keras.Model` (nested models included).

    Returns:
        How many BatchNormalization layers were changed.

    Example:
        >>> model = kerastl.build("mobilenet_v2", 5, bn_training=True, strategy=strategy)
        >>> kerastl.distribute.synchronize_batch_norm(model) > 0
        True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"`model` must be a keras.Model. Received: model={model!r}")
    changed = 0
    for layer in _sublayers(model):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            changed += 1
    return changed


def _sublayers(layer):
    for sub in getattr(layer, "layers", ()):
        yield sub
        yield from _sublayers(sub)


def describe(strategy: tf.distribute.Strategy | None) -> str:
    """Returns a short description such as ``"MirroredStrategy (2 replicas)"``.

    Args:
        strategy: A strategy, or None for the current one.

    Returns:
        The strategy's TensorFlow class name and its number of replicas.

    Example:
        >>> kerastl.distribute.describe(None)
        'default strategy (1 replica)'
    """
    strategy = _current(strategy)
    n = num_replicas(strategy)
    name = type(strategy).__name__.lstrip("_")
    name = "default strategy" if name.startswith("DefaultDistribution") else name
    return f"{name} ({n} replica{'s' if n != 1 else ''})"
