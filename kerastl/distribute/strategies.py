"""`kerastl.distribute.get_strategy`: the `tf.distribute.Strategy` for the hardware at hand.

Nothing touches hardware at import time and nothing is cached: every call
looks at the machine afresh.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any, Callable

import tensorflow as tf

from kerastl._validation import check_one_of
from kerastl.distribute.helpers import describe

logger = logging.getLogger(__name__)

KINDS = ("auto", "tpu", "mirrored", "multi_worker", "gpu", "cpu")

_TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}'
)


def get_strategy(kind: Any = "auto", *, tpu: str | None = None,
                 resolver: Any = None) -> tf.distribute.Strategy:
    """Returns the `tf.distribute.Strategy` for the hardware at hand.

    Kinds:
        - ``"auto"``: a `TPUStrategy` when a TPU is found (Colab, Cloud TPU VM),
          else `MirroredStrategy` over all GPUs when there are several, else
          the default strategy (one device).
        - ``"tpu"``: connect to a TPU, initialize it and use `TPUStrategy`.
        - ``"mirrored"``: `MirroredStrategy` over all GPUs, or over all logical
          CPU devices when there is no GPU.
        - ``"multi_worker"``: `MultiWorkerMirroredStrategy` configured by the
          ``TF_CONFIG`` environment variable (create it at program start).
        - ``"gpu"``: `OneDeviceStrategy("/gpu:0")`, or `MirroredStrategy`
          when there are several GPUs.
        - ``"cpu"``: `OneDeviceStrategy("/cpu:0")`.

    A `tf.distribute.Strategy` passed as `kind` is returned unchanged.

    Args:
        kind: One of the kinds above, or a strategy.
        tpu: TPU name or ``grpc://`` address for ``"auto"``/``"tpu"``; ``"local"``
            for TPUs attached to this VM. None resolves it from the
            environment (``TPU_NAME``), then tries ``"local"`` when TensorFlow
            lists TPU devices.
        resolver: For ``"auto"``/``"tpu"``: a
            `tf.distribute.cluster_resolver.ClusterResolver`, or a callable
            ``resolver(tpu)`` returning one. Defaults to `TPUClusterResolver`.

    Returns:
        A `tf.distribute.Strategy`.

    Raises:
        ValueError: An unknown kind, `tpu`/`resolver` given for a kind that does
            not use them, or a missing or invalid ``TF_CONFIG``.
        RuntimeError: The asked-for hardware (TPU, GPU) is absent.

    Example:
        >>> strategy = kerastl.distribute.get_strategy("cpu")
        >>> model = kerastl.build("mobilenet_v2", 3, strategy=strategy)
    """
    if isinstance(kind, tf.distribute.Strategy):
        return kind
    if not isinstance(kind, str):
        raise TypeError(
            "`kind` must be a string or a tf.distribute.Strategy. "
            f"Received: kind={kind!r}")
    check_one_of("kind", kind, KINDS)
    if kind not in ("auto", "tpu") and (tpu is not None or resolver is not None):
        raise ValueError(
            "`tpu` and `resolver` are only used with kind='auto' or kind='tpu'. "
            f"Received: kind={kind!r}, tpu={tpu!r}, resolver={resolver!r}")
    if kind == "auto":
        return _auto_strategy(tpu, resolver)
    if kind == "tpu":
        try:
            return _tpu_strategy(tpu, resolver)
        except Exception as err:  # Any failure to reach a TPU means "no TPU".
            raise RuntimeError(
                f"`kind='tpu'` needs a TPU but none could be reached "
                f"({type(err).__name__}: {err}). On a Cloud TPU VM or Colab TPU "
                "runtime pass tpu='local'; for a TPU node pass its name or "
                "grpc:// address as `tpu=`; otherwise use kind='auto'.") from err
    if kind == "multi_worker":
        _read_tf_config()
        return _MultiWorkerMirroredStrategy()
    if kind == "mirrored":
        return _mirrored_strategy()
    if kind == "gpu":
        return _gpu_strategy()
    return tf.distribute.OneDeviceStrategy("/cpu:0")


def resolve_strategy(strategy: Any, model: Any = None) -> tf.distribute.Strategy | None:
    """Returns the strategy that a ``strategy=`` argument of build, fit or tune stands for.

    The one place where kerastl reads a ``strategy`` argument, so every
    function accepts the same values and reports a bad one the same way.

    Args:
        strategy: None, a `tf.distribute.Strategy`, or a `get_strategy` kind
            (``"auto"``, ``"tpu"``, ``"mirrored"``, ...).
        model: For None: a model whose ``distribute_strategy`` is the answer
            (`kerastl.fit` trains in the strategy the model was built in).

    Returns:
        A `tf.distribute.Strategy`, or None when `strategy` and `model` are None.

    Raises:
        ValueError: An unknown kind (the message names `strategy`).
        TypeError: Neither None, a string nor a `tf.distribute.Strategy`.

    Example:
        >>> kerastl.distribute.resolve_strategy("cpu")
        <tensorflow.python.distribute.one_device_strategy.OneDeviceStrategy ...>
    """
    if strategy is None:
        return None if model is None else model.distribute_strategy
    if isinstance(strategy, tf.distribute.Strategy):
        return strategy
    if not isinstance(strategy, str):
        raise TypeError("`strategy` must be None, a tf.distribute.Strategy or one of "
                        f"{', '.join(repr(k) for k in KINDS)}. Received: strategy={strategy!r}")
    check_one_of("strategy", strategy, KINDS)
    return get_strategy(strategy)


def _auto_strategy(tpu, resolver):
    try:
        strategy = _tpu_strategy(tpu, resolver)
    except Exception as err:  # Any failure to reach a TPU means "no TPU".
        message = (f"kerastl.distribute: no TPU found ({type(err).__name__}: {err}); "
                   "falling back to GPUs or the default strategy.")
        if tpu is not None or resolver is not None:
            warnings.warn(message, stacklevel=3)
        else:
            logger.info(message)
    else:
        logger.info("kerastl.distribute: using %s.", describe(strategy))
        return strategy
    if len(tf.config.list_physical_devices("GPU")) > 1:
        strategy = tf.distribute.MirroredStrategy()
    else:
        strategy = tf.distribute.get_strategy()
    logger.info("kerastl.distribute: using %s.", describe(strategy))
    return strategy


def _tpu_strategy(tpu, resolver):
    """Resolves, connects to and initializes a TPU; returns a TPUStrategy."""
    candidates = [tpu]
    if tpu is None and tf.config.list_physical_devices("TPU"):
        candidates.append("local")
    error = None
    for name in candidates:
        try:
            cluster = _make_resolver(name, resolver)
            break
        except Exception as err:  # Try the next candidate, re-raise the first.
            error = error or err
    else:
        raise error
    tf.config.experimental_connect_to_cluster(cluster)
    tf.tpu.experimental.initialize_tpu_system(cluster)
    return tf.distribute.TPUStrategy(cluster)


def _make_resolver(tpu, resolver):
    if isinstance(resolver, tf.distribute.cluster_resolver.ClusterResolver):
        return resolver
    factory: Callable = resolver or tf.distribute.cluster_resolver.TPUClusterResolver
    return factory(tpu=tpu)


def _mirrored_strategy():
    if tf.config.list_physical_devices("GPU"):
        return tf.distribute.MirroredStrategy()
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    logger.info("kerastl.distribute: no GPU; mirroring over CPU devices %s.", devices)
    return tf.distribute.MirroredStrategy(devices)


def _gpu_strategy():
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        raise RuntimeError(
            "`kind='gpu'` needs a GPU but TensorFlow sees none. Check that "
            "`nvidia-smi` lists one and that TensorFlow was installed with CUDA "
            "(`pip install 'tensorflow[and-cuda]'`), or use kind='cpu' or 'auto'.")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.OneDeviceStrategy("/gpu:0")


def _read_tf_config() -> dict:
    """Parses and checks ``TF_CONFIG``; raises a ValueError showing the fix."""
    raw = os.environ.get("TF_CONFIG", "")
    hint = f" Set it on every worker, e.g. TF_CONFIG='{_TF_CONFIG_EXAMPLE}'."
    if not raw.strip():
        raise ValueError(
            "`kind='multi_worker'` needs the TF_CONFIG environment variable, "
            "which describes the cluster and this worker's place in it." + hint)
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}).{hint} "
                         f"Received: TF_CONFIG={raw!r}") from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    problem = None
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        problem = "'cluster' must map 'worker' (and optionally 'chief') to lists of host:port"
    elif not isinstance(task, dict) or task.get("type") not in cluster:
        problem = f"'task.type' must be one of the cluster's jobs {sorted(cluster)}"
    elif not (isinstance(task.get("index"), int) and not isinstance(task["index"], bool)
              and 0 <= task["index"] < len(cluster[task["type"]])):
        problem = (f"'task.index' must be an integer between 0 and "
                   f"{len(cluster[task['type']]) - 1}")
    if problem:
        raise ValueError(f"TF_CONFIG is invalid: {problem}.{hint} Received: TF_CONFIG={raw!r}")
    return config


class _MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """`MultiWorkerMirroredStrategy` whose `reduce` accepts what Keras 3 passes it.

    On the TensorFlow backend `keras.Model.fit` calls
    ``strategy.reduce("MEAN", (x, y), axis=None)`` on a nested batch and
    ``strategy.reduce("MEAN", scalar, axis=0)`` on each scalar metric; the stock
    strategy rejects both (keras-team/keras#20585, tensorflow/tensorflow#72388).
    Here nests are reduced leaf by leaf and `axis` is dropped for scalars, which
    then are averaged across replicas, as Keras intends.
    """

    def reduce(self, reduce_op, value, axis=None):
        parent = super()

        def reduce_one(v):
            values = getattr(v, "values", (v,))
            scalar = getattr(values[0], "shape", None) is not None and values[0].shape.rank == 0
            return parent.reduce(reduce_op, v, axis=None if scalar else axis)

        return tf.nest.map_structure(reduce_one, value)
