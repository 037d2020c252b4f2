"""Checks of `kerastl.tune`'s arguments, all made before the first trial runs.

A bad argument must fail at once with the project's error form, not after a
trial has run (or been saved into the project): the build and fit arguments,
the objective, the number of classes and the input size are checked here.
"""

from __future__ import annotations

import difflib
import inspect
import warnings

import keras_tuner

from kerastl._validation import suggest
from kerastl.tuning.space import _spec_of

BUILD_OWNED = ("backbone", "num_classes", "trainable_blocks", "strategy")
FIT_OWNED = ("model", "train", "validation_data", "recipe", "epochs", "fine_tune_epochs",
             "learning_rate", "backbone_learning_rate", "layer_decay", "trainable_blocks",
             "strategy", "seed", "verbose", "feature_cache", "cache_features")
# Documented keywords of earlier versions: old name -> new name.
RENAMED = {"max_epochs": "fine_tune_epochs", "warmup_epochs": "epochs"}


def allowed_args(fn, owned) -> list[str]:
    """Returns the keyword arguments of `fn` that tune passes on (all but `owned`)."""
    return [name for name, p in inspect.signature(fn).parameters.items()
            if name not in owned and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def check_args(given: dict, fn, owned, what: str) -> dict:
    """Returns `given` if every key is an argument of `fn` that tune does not set itself."""
    allowed = allowed_args(fn, owned)
    unknown = [k for k in given if k not in allowed]
    if unknown:
        parts = []
        for key in unknown:
            close = suggest(key, allowed, n=1)
            hint = (f" (did you mean {close[0]!r}?)" if close else
                    " (set by tune itself)" if key in owned else "")
            parts.append(f"{key!r}{hint}")
        raise ValueError(f"Unknown {what} argument(s) for kerastl.tune: {', '.join(parts)}. "
                         f"Valid: {', '.join(sorted(allowed))}. Received: {dict(given)!r}")
    return dict(given)


def objective(objective, task: str, num_outputs):
    """Returns `objective` as a `keras_tuner.Objective` if `kerastl.fit` reports that metric."""
    from kerastl.layers import task_metrics

    names = ["loss"] + [m.name for m in task_metrics(task, one_hot=True,
                                                     num_outputs=num_outputs or 1)]
    allowed = [f"val_{n}" for n in names] + names
    name = objective.name if isinstance(objective, keras_tuner.Objective) else objective
    if not isinstance(name, str) or name not in allowed:
        close = (difflib.get_close_matches(name, allowed, n=1, cutoff=0.75)
                 if isinstance(name, str) else [])  # 'val_f1' is not a typo of 'val_loss'
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"`objective` must be a metric kerastl.fit reports for task={task!r}: "
                         f"{', '.join(repr(a) for a in allowed)}.{hint} "
                         f"Received: objective={name!r}")
    if isinstance(objective, keras_tuner.Objective):
        return objective
    minimize = any(word in name for word in ("loss", "mae"))
    return keras_tuner.Objective(name, direction="min" if minimize else "max")


def num_classes(num_classes, class_names, build_kwargs):
    """Returns the number of classes, checked against the data's class names when known."""
    task = build_kwargs.get("task")
    names = build_kwargs.get("class_names") or class_names
    if num_classes is None:
        if task == "regression":
            return None
        if names:
            return len(names)
        raise ValueError("Pass `num_classes`: it could not be read from the training data "
                         "(no `class_names`). Received: num_classes=None")
    expected = 2 if task == "binary" else None if task == "regression" else (
        len(names) if names else None)
    if expected is not None and num_classes != expected:
        raise ValueError(f"`num_classes` must be {expected}, the number of classes of the "
                         f"training data ({', '.join(map(str, names or []))}). "
                         f"Received: num_classes={num_classes!r}")
    return num_classes


def image_shape(dataset):
    """Returns the (height, width, channels) of a dataset's images, or None when unknown."""
    spec = getattr(dataset, "element_spec", None)
    if isinstance(spec, (tuple, list)) and spec:
        spec = spec[0]
    shape = getattr(spec, "shape", None)
    if shape is None or shape.rank not in (3, 4):
        return None
    dims = tuple(shape.as_list()[-3:])
    return dims if all(d is not None for d in dims) else None


def input_shape(build_kwargs, train, backbone):
    """Sets ``input_shape`` from the data when it is not given, and checks it before any trial."""
    from kerastl import model as model_lib

    data_shape = image_shape(train)
    given = build_kwargs.get("input_shape")
    if given is None:
        if data_shape is None:
            return build_kwargs
        build_kwargs = dict(build_kwargs, input_shape=data_shape)
    if backbone.startswith("hub:"):
        return build_kwargs
    shape = model_lib._input_shape(build_kwargs["input_shape"], _spec_of(backbone))
    if data_shape is not None and shape != data_shape:
        raise ValueError(
            f"`build_kwargs['input_shape']` must match the training images {data_shape} (or be "
            f"left out: tune then takes it from the data). Received: input_shape={shape}")
    return build_kwargs


def renamed(old: dict, new: dict) -> dict:
    """Maps deprecated keywords to their new names, with a FutureWarning each."""
    out = dict(new)
    for old_name, value in old.items():
        new_name = RENAMED[old_name]
        warnings.warn(f"kerastl.tune(`{old_name}`=...) is deprecated; use `{new_name}`=... "
                      "instead.", FutureWarning, stacklevel=3)
        if out.get(new_name) is not None:
            raise ValueError(f"Pass `{new_name}` only (`{old_name}` is its deprecated name). "
                             f"Received: {old_name}={value!r}, {new_name}={out[new_name]!r}")
        out[new_name] = value
    return out


def flat_build_kwargs(flat: dict, build_kwargs) -> dict:
    """Merges deprecated flat `kerastl.build` keywords into `build_kwargs`."""
    if build_kwargs is not None and not isinstance(build_kwargs, dict):
        raise TypeError(f"`build_kwargs` must be a dict or None. "
                        f"Received: build_kwargs={build_kwargs!r}")
    merged = dict(build_kwargs or {})
    for key, value in flat.items():
        if key in merged:
            raise ValueError(f"`{key}` is given twice: in `build_kwargs` and as a keyword. "
                             f"Received: {key}={value!r}")
        merged[key] = value
    return merged
