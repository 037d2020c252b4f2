"""Validation of `kerastl.fit`'s arguments (one error form for every argument)."""

from __future__ import annotations

import dataclasses
import os

import keras

from kerastl._validation import check_bool, check_float, check_int, check_one_of
from kerastl.training.recipes import RECIPES

MIXED_PRECISION = (None, "float32", "mixed_float16", "mixed_bfloat16")
HEAD_SOLVERS = ("auto", "linear", "gradient")
DEFAULT_PATIENCE_CACHED = 10
DEFAULT_PATIENCE = 5
# WiSE-FT's weight-space mix (Wortsman et al. 2022) is an option, off by
# default: at 0.5 it lost 1-2 test points to the fine-tuned weights at every
# point of the fine-tuning study (benchmarks/README.md), and kept the
# fine-tuning too rarely to keep its gains on flowers.
DEFAULT_FINE_TUNE_INTERPOLATION = 1.0
# restore_best_weights=None: the first stage ends at its best validation epoch,
# every later stage at its last epoch. A later stage is compared with the
# stages before it on the validation images; its best epoch is the maximum of
# several noisy scores on those same images, so it wins that comparison too
# often (fine-tuning study, benchmarks/README.md: kept fine-tunings whose best
# epoch won by 2-4 validation images and lost 6-8 test points).


def _optional(check, name, value, **kwargs):
    return None if value is None else check(name, value, **kwargs)


@dataclasses.dataclass(frozen=True)
class FitOptions:
    """`kerastl.fit`'s keyword arguments, checked."""

    recipe: str = "auto"
    head_solver: str = "auto"
    refit_head: bool = True
    epochs: int | None = None
    fine_tune_epochs: int | None = None
    learning_rate: float | None = None
    backbone_learning_rate: float | None = None
    layer_decay: float | None = None
    trainable_blocks: int | str | None = None
    batch_size: int = 32
    shuffle: bool = True
    cache_features: bool = True
    augment_passes: int = 0
    cache_memory_limit: int = 0
    label_smoothing: float = 0.1
    weight_decay: float = 0.0
    early_stopping: bool | int = True
    checkpoint_dir: str | None = None
    dtype_policy: str | None = None
    jit_compile: bool | str = False
    bn_training: bool = False
    fine_tune_interpolation: float = DEFAULT_FINE_TUNE_INTERPOLATION
    restore_best_weights: bool | None = None
    seed: int | None = None
    verbose: int = 1

    def patience(self, cached: bool) -> int | None:
        """Early-stopping patience of a stage (None: no early stopping)."""
        if self.early_stopping is False:
            return None
        if self.early_stopping is True:
            return DEFAULT_PATIENCE_CACHED if cached else DEFAULT_PATIENCE
        return self.early_stopping

    def restores_best(self, index: int) -> bool:
        """Whether stage `index` ends at its best validation epoch (else its last)."""
        if self.restore_best_weights is None:
            return index == 0
        return self.restore_best_weights


def check_options(**kw) -> FitOptions:
    """Returns the checked `FitOptions`, or raises ValueError naming the bad argument."""
    check_one_of("recipe", kw["recipe"], RECIPES)
    check_one_of("head_solver", kw["head_solver"], HEAD_SOLVERS)
    for name in ("epochs", "fine_tune_epochs"):
        _optional(check_int, name, kw[name], minimum=1)
    for name in ("learning_rate", "backbone_learning_rate"):
        _optional(check_float, name, kw[name], minimum=0.0, min_inclusive=False)
    _optional(check_float, "layer_decay", kw["layer_decay"], minimum=0.0, maximum=1.0,
              min_inclusive=False)
    tb = kw["trainable_blocks"]
    if tb is not None and tb != "all":
        check_int("trainable_blocks", tb, minimum=0, extra=" or 'all'")
    check_int("batch_size", kw["batch_size"], minimum=1)
    for name in ("shuffle", "cache_features", "bn_training", "refit_head"):
        check_bool(name, kw[name])
    augment = kw["augment_passes"]
    augment = 0 if augment is None else check_int("augment_passes", augment, minimum=0, maximum=16)
    check_int("cache_memory_limit", kw["cache_memory_limit"], minimum=0)
    check_float("label_smoothing", kw["label_smoothing"], minimum=0.0, maximum=1.0,
                max_inclusive=False)
    check_float("weight_decay", kw["weight_decay"], minimum=0.0)
    stop = kw["early_stopping"]
    if not isinstance(stop, bool):
        check_int("early_stopping", stop, minimum=1, extra=" (the patience), True or False")
    folder = kw["checkpoint_dir"]
    if folder is not None and not isinstance(folder, (str, os.PathLike)):
        raise ValueError("`checkpoint_dir` must be a folder path or None. "
                         f"Received: checkpoint_dir={kw['checkpoint_dir']!r}")
    check_one_of("dtype_policy", kw["dtype_policy"], MIXED_PRECISION)
    check_one_of("jit_compile", kw["jit_compile"], (False, True, "auto"))
    interpolation = kw.get("fine_tune_interpolation", DEFAULT_FINE_TUNE_INTERPOLATION)
    interpolation = check_float("fine_tune_interpolation", interpolation, minimum=0.0,
                                maximum=1.0, min_inclusive=False)
    _optional(check_bool, "restore_best_weights", kw.get("restore_best_weights"))
    _optional(check_int, "seed", kw["seed"], minimum=0)
    check_int("verbose", kw["verbose"], minimum=0, maximum=2)
    values = dict(kw, augment_passes=augment, fine_tune_interpolation=interpolation)
    if values["checkpoint_dir"] is not None:
        values["checkpoint_dir"] = os.fspath(values["checkpoint_dir"])
    return FitOptions(**values)


def check_callbacks(callbacks) -> list:
    """Returns `callbacks` as a list of `keras.callbacks.Callback`."""
    if callbacks is None:
        return []
    items = list(callbacks) if isinstance(callbacks, (list, tuple)) else None
    if items is None or not all(isinstance(c, keras.callbacks.Callback) for c in items):
        raise ValueError("`callbacks` must be a list of keras.callbacks.Callback. "
                         f"Received: callbacks={callbacks!r}")
    return items


__all__ = ["DEFAULT_FINE_TUNE_INTERPOLATION", "FitOptions", "HEAD_SOLVERS", "MIXED_PRECISION", "check_callbacks", "check_options"]
