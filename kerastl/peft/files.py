"""Adapter-only files: the few variables a PEFT training changed, applied to a fresh base model.

A file (HDF5, conventionally ``<task>.peft.weights.h5``) holds the
`kerastl.peft.PeftConfig`, the backbone name and input shape it was trained
on, and one dataset per variable of `kerastl.peft.core.adapter_variables`
(low-rank factors, biases or BatchNormalization affine and statistics, and the
head), keyed by the variable's path. It is a few kilobytes to a few hundred:
the backbone's pretrained weights are not in it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np

from kerastl.accessors import get_head, model_info
from kerastl.peft import core
from kerastl.peft.config import PeftConfig

FORMAT = "kerastl.peft/1"
SUFFIX = ".peft.weights.h5"


def _keys(variables) -> list:
    keys = [v.path for v in variables]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"Variables share the paths {repeated}: rename the layers so each "
                         "adapter variable has its own path.")
    return keys


def _check_path(path, *, must_exist: bool) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"`path` must be a file path. Received: path={path!r}")
    path = Path(path)
    if not str(path).endswith(".h5"):
        raise ValueError(f"`path` must end in '.h5' (conventionally '{SUFFIX}'). "
                         f"Received: path={str(path)!r}")
    if must_exist and not path.is_file():
        raise FileNotFoundError(f"No adapter file at {str(path)!r}.")
    return path


def save(model, path) -> Path:
    """Writes only the model's PEFT-trained variables (and its head) to an adapter file.

    Args:
        model: A kerastl model prepared by `kerastl.peft.apply` (and trained).
        path: File path ending in ``.h5`` (conventionally ``task.peft.weights.h5``).

    Returns:
        The path written.

    Example:
        >>> kerastl.peft.save(model, "flowers.peft.weights.h5")
        PosixPath('flowers.peft.weights.h5')
    """
    path = _check_path(path, must_exist=False)
    config = core.get_config(model)
    variables = core.adapter_variables(model)
    info = model_info(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as handle:
        handle.attrs["format"] = FORMAT
        handle.attrs["peft"] = json.dumps(config.to_dict())
        handle.attrs["model"] = json.dumps({"backbone": info.backbone,
                                            "input_shape": list(info.input_shape),
                                            "task": info.task, "num_outputs": info.num_outputs,
                                            "class_names": info.class_names})
        group = handle.create_group("variables")
        for key, variable in zip(_keys(variables), variables):
            group.create_dataset(key, data=np.asarray(variable.numpy()))
    return path


def read_config(path) -> tuple[PeftConfig, dict]:
    """Returns ``(PeftConfig, model facts)`` stored in an adapter file."""
    path = _check_path(path, must_exist=True)
    with h5py.File(path, "r") as handle:
        if handle.attrs.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} is not a kerastl.peft adapter file (format "
                             f"{handle.attrs.get('format')!r}, expected {FORMAT!r}).")
        fields = json.loads(handle.attrs["peft"])
        facts = json.loads(handle.attrs["model"])
    if isinstance(fields.get("blocks"), list):
        fields["blocks"] = tuple(fields["blocks"])
    return PeftConfig(**fields), facts


def _check_facts(model, facts: dict, path) -> None:
    info = model_info(model)
    mine = {"backbone": info.backbone, "input_shape": list(info.input_shape),
            "task": info.task, "num_outputs": info.num_outputs}
    for key, value in mine.items():
        if facts.get(key) != value:
            raise ValueError(f"The adapter file {str(path)!r} was trained on a model with "
                             f"{key}={facts.get(key)!r}; this model has {key}={value!r}. "
                             "Build the base model the adapter was trained on.")


def load(model, path):
    """Applies an adapter file to a freshly built base model (same backbone and head shape).

    The file's `PeftConfig` is applied first when the model has none (LoRA
    factors are added), then every stored variable is assigned; the model's
    class names become the file's.

    Args:
        model: A model from `kerastl.build` with the backbone, input shape and
            output size the adapter was trained with.
        path: An adapter file written by `kerastl.peft.save`.

    Returns:
        The `kerastl.peft.PeftSummary` of the model.

    Example:
        >>> base = kerastl.build("mobilenet_v2", 5, input_shape=224)
        >>> kerastl.peft.load(base, "flowers.peft.weights.h5").method
        'lora'
    """
    config, facts = read_config(path)
    _check_facts(model, facts, path)
    summary = core.apply(model, config)
    variables = core.adapter_variables(model)
    with h5py.File(path, "r") as handle:
        group = handle["variables"]
        stored = {}
        group.visititems(lambda name, item: stored.__setitem__(name, item[()])
                         if isinstance(item, h5py.Dataset) else None)
    keys = _keys(variables)
    missing = [k for k in keys if k not in stored]
    if missing or len(stored) != len(keys):
        raise ValueError(f"The adapter file {str(path)!r} does not match this model: it lacks "
                         f"{missing[:5]} and holds {len(stored)} variables for {len(keys)}.")
    for key, variable in zip(keys, variables):
        value = stored[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"Adapter variable {key!r} has shape {tuple(value.shape)}; the "
                             f"model's has {tuple(variable.shape)}.")
        variable.assign(value)
    if facts.get("class_names") is not None:
        get_head(model).class_names = list(facts["class_names"])
    return summary


__all__ = ["FORMAT", "SUFFIX", "load", "read_config", "save"]
