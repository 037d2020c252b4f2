"""One code path for a CPU, several GPUs, several machines and Cloud TPUs.

kerastl runs the same `build`/`fit`/`tune` calls everywhere through
`tf.distribute`: pick a strategy once with `kerastl.distribute.get_strategy`
and pass it as ``strategy=``. The helpers are what the rest of kerastl uses to
honour a strategy.

Example:
    >>> strategy = kerastl.distribute.get_strategy("auto")
    >>> kerastl.distribute.global_batch_size(32, strategy)
    32
"""

from kerastl.distribute.helpers import (
    LR_RULES,
    TPU_STEPS_PER_EXECUTION,
    compile_options,
    default_dtype_policy,
    describe,
    global_batch_size,
    is_multi_worker,
    is_tpu,
    num_replicas,
    prepare_dataset,
    scale_learning_rate,
    scope,
    static_batch_size,
    synchronize_batch_norm,
)
from kerastl.distribute.strategies import KINDS, get_strategy, resolve_strategy

__all__ = [
    "KINDS", "LR_RULES", "TPU_STEPS_PER_EXECUTION", "compile_options", "default_dtype_policy",
    "describe", "get_strategy", "global_batch_size", "is_multi_worker", "is_tpu",
    "num_replicas", "prepare_dataset", "resolve_strategy", "scale_learning_rate", "scope",
    "static_batch_size", "synchronize_batch_norm",
]
