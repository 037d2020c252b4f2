"""Turns command-line DATA specs into `kerastl.data.ImageData`.

DATA is a folder with one subfolder of images per class (optionally already
split into ``train/`` and ``val/`` or ``validation/`` and ``test/``), or
``tfds:NAME`` for a tensorflow-datasets dataset (read from ``$TFDS_DATA_DIR``
or TFDS's default folder).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

TFDS_PREFIX = "tfds:"
SPLIT_CHOICES = ("auto", "train", "validation", "test", "all")
DEFAULT_VALIDATION_SPLIT = 0.2


def is_tfds(spec: str) -> bool:
    """Whether a DATA spec names a tensorflow-datasets dataset."""
    return str(spec).startswith(TFDS_PREFIX)


def has_ready_split(path) -> bool:
    """Whether a folder already holds ``train/`` plus ``val/``/``validation/``/``test/``."""
    path = Path(path)
    return (path / "train").is_dir() and any(
        (path / name).is_dir() for name in ("val", "validation", "test"))


def check_data_spec(spec: str) -> str:
    """Returns a DATA spec, or fails (exit code 1) when its folder does not exist."""
    if not spec:
        raise click.UsageError("Missing argument 'DATA' (a folder of class folders or "
                               "tfds:NAME), on the command line or as 'data' in --config.")
    if not is_tfds(spec) and not Path(spec).expanduser().is_dir():
        what = "is a file, not a folder" if Path(spec).exists() else "does not exist"
        raise FileNotFoundError(f"DATA {spec!r} {what}: pass a folder with one subfolder of "
                                "images per class, or tfds:NAME.")
    return spec


def _tfds_splits(name: str) -> set:
    try:
        import tensorflow_datasets as tfds

        return set(tfds.builder(name).info.splits.keys())
    except Exception:  # noqa: BLE001 (unknown or unprepared: from_tfds reports it)
        return set()


def _percent_split(fraction: float) -> tuple[str, str]:
    cut = int(round(100 * (1.0 - fraction)))
    return f"train[:{cut}%]", f"train[{cut}%:]"


def load_training_data(kerastl, spec: str, *, image_size: int, batch_size: int,
                       validation_split: float | None, seed: int | None, download: bool = False):
    """Loads DATA for training: train and validation splits.

    A folder with ``train/`` and ``val/`` (or ``validation/``) is used as it
    is; otherwise `validation_split` (default 0.2) of every class of the
    training images is held out. A TFDS dataset uses its ``validation``
    split, else the last `validation_split` of ``train``.

    Returns:
        A `kerastl.data.ImageData` with ``train`` and ``validation``.
    """
    check_data_spec(spec)
    if is_tfds(spec):
        name = spec[len(TFDS_PREFIX):]
        splits = _tfds_splits(name)
        if validation_split is None and "validation" in splits:
            split = ("train", "validation")
        else:
            split = _percent_split(validation_split or DEFAULT_VALIDATION_SPLIT)
        return kerastl.data.from_tfds(name, image_size=image_size, split=split,
                                      batch_size=batch_size, seed=seed, download=download)
    path = Path(spec).expanduser()
    has_val = (path / "train").is_dir() and any(
        (path / name).is_dir() for name in ("val", "validation"))
    if validation_split is None and not has_val:  # class folders, or only train/ (+ test/)
        validation_split = DEFAULT_VALIDATION_SPLIT
    return kerastl.data.from_directory(os.path.expanduser(spec), image_size=image_size,
                                       batch_size=batch_size,
                                       validation_split=validation_split, seed=seed)


def _tfds_eval_split(splits: set, split: str) -> str:
    """The TFDS split to evaluate on; without a validation split, the part `kerastl train`
    held out by default (the last 20% of ``train``)."""
    held_out = _percent_split(DEFAULT_VALIDATION_SPLIT)[1]
    if split == "auto":
        return next((s for s in ("test", "validation") if s in splits), held_out)
    if split == "all":
        return "train"
    if split == "validation" and "validation" not in splits:
        return held_out
    return split


def _pick(data, split: str, spec: str):
    if split == "auto":
        for name in ("test", "validation", "train"):
            if getattr(data, name, None) is not None:
                return getattr(data, name), name
    dataset = getattr(data, split, None)
    if dataset is None:
        raise ValueError(f"DATA {spec!r} has no {split!r} split; it has: "
                         f"{', '.join(data.splits)}.")
    return dataset, split


def load_eval_data(kerastl, spec: str, *, image_size, batch_size: int, split: str = "auto",
                   class_names=None):
    """Loads labelled images to evaluate or calibrate on.

    Args:
        kerastl: The kerastl module.
        spec: DATA spec.
        image_size: ``(height, width)`` of the model.
        batch_size: Images per batch.
        split: ``"auto"`` (test, else validation, else the whole folder),
            ``"train"``, ``"validation"``, ``"test"`` or ``"all"`` (a folder's
            every image; for a TFDS dataset, the whole ``train`` split). A TFDS
            dataset without a validation split is evaluated on the last 20% of
            ``train``, the part `kerastl train` holds out by default.
        class_names: The model's class names: the folders are mapped to these
            label indices (they must name the same classes).

    Returns:
        ``(dataset, class_names, description)``.
    """
    check_data_spec(spec)
    if is_tfds(spec):
        name = spec[len(TFDS_PREFIX):]
        chosen = _tfds_eval_split(_tfds_splits(name), split)
        data = kerastl.data.from_tfds(name, image_size=image_size, split=chosen,
                                      batch_size=batch_size, shuffle=False, shuffle_files=False)
        return data.train, data.class_names, f"{spec} ({chosen})"
    path = os.path.expanduser(spec)
    ready = has_ready_split(path)
    if split == "all" and ready:
        raise click.BadParameter(f"{spec!r} is split into train/ and val/ folders; choose one "
                                 "of them with --split train|validation|test.",
                                 param_hint="'--split'")
    if not ready and split not in ("auto", "all"):
        raise click.BadParameter(f"{spec!r} is not split into train/ and val/ folders; use "
                                 "--split all (the default) to use every image.",
                                 param_hint="'--split'")
    names = list(class_names) if class_names else None
    try:
        data = kerastl.data.from_directory(path, image_size=image_size, batch_size=batch_size,
                                           shuffle=False, class_names=names)
    except ValueError as error:
        if names is None or "class_names" not in str(error):
            raise
        raise ValueError(f"The class folders of {spec!r} are not the model's classes "
                         f"({', '.join(names)}): {error}") from None
    dataset, chosen = _pick(data, "auto" if split == "all" else split, spec)
    where = "all images" if not ready else f"{chosen} split"
    return dataset, data.class_names, f"{spec} ({where})"


def load_single_task_predictor(kerastl, model, *, command: str):
    """`kerastl.load_predictor(model)`, refusing a multi-task model with a usage error.

    ``kerastl evaluate`` scores one output against one labelled folder; a
    multi-task model has one output per task (and its labels come from one
    folder per task), so it is refused clearly rather than read as if it had
    one. (``kerastl predict`` prints every task's top-k.)
    """
    predictor = kerastl.load_predictor(model)
    tasks = getattr(predictor, "tasks", None)
    if tasks:
        raise click.UsageError(
            f"{str(model)!r} is a multi-task model (tasks: {', '.join(tasks)}); "
            f"`kerastl {command}` reads single-task models. Use "
            "`kerastl.load_predictor(MODEL).predict(images)` in Python, which returns one "
            "result per task.")
    return predictor
