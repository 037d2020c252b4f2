"""Flags shared by ``kerastl train`` and ``kerastl tune``, and the steps they share."""

from __future__ import annotations

import datetime
import re
from pathlib import Path

import click

from kerastl.cli.config import CommaList, JsonDict, WeightsType

QUANTIZATIONS = ("float32", "dynamic", "float16", "int8")
STRATEGIES = ("auto", "tpu", "mirrored", "multi_worker", "gpu", "cpu")
DEFAULT_EXPORT_QUANTIZE = ("float32", "int8")


def _apply(func, options):
    for option in reversed(options):
        func = option(func)
    return func


def data_model_options(func):
    """DATA plus the data, backbone and hardware flags of train and tune."""
    return _apply(func, [
        click.argument("data", required=False),
        click.option("--backbone", default="mobilenet_v2", show_default=True,
                     help="Backbone name (see `kerastl backbones`) or hub:<handle or path>. "
                          "Example: --backbone efficientnet_b0"),
        click.option("--backbone-kwargs", type=JsonDict(), default=None,
                     help="Backbone constructor options as JSON. "
                          "Example: --backbone-kwargs '{\"alpha\": 0.35}'"),
        click.option("--image-size", type=click.IntRange(min=1), default=None,
                     help="Side of the square input in pixels [default: the backbone's own, "
                          "224 for mobilenet_v2]. Example: --image-size 160"),
        click.option("--weights", type=WeightsType(), default="imagenet", show_default=True,
                     help="Pretrained weights: imagenet (Keras download, cached in "
                          "$KERAS_HOME/models), none (random init) or a .h5/.weights.h5 file. "
                          "Example: --weights none"),
        click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
                     help="Images per batch. Example: --batch-size 64"),
        click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True,
                                                                 max_open=True),
                     default=None,
                     help="Fraction of each class held out for validation when DATA has no "
                          "val/ folder [default: 0.2]. Example: --validation-split 0.1"),
        click.option("--augment/--no-augment", default=False, show_default=True,
                     help="Random flips, rotations, zoom and contrast while training. "
                          "Example: --augment"),
        click.option("--strategy", type=click.Choice(STRATEGIES), default="auto",
                     show_default=True,
                     help="Distribution strategy: auto = TPU if found, else all GPUs, else "
                          "CPU. Example: --strategy cpu"),
        click.option("--seed", type=int, default=1337, show_default=True,
                     help="Seed of the data split, shuffling and initial weights. "
                          "Example: --seed 7"),
        click.option("--download", is_flag=True, default=False,
                     help="Download a tfds: dataset that is not prepared yet. "
                          "Example: kerastl train tfds:tf_flowers --download"),
    ])


def run_export_options(func):
    """The run folder and export flags of train and tune."""
    return _apply(func, [
        click.option("--output", type=click.Path(file_okay=False), default=None,
                     help="Run folder for the model, config.json, history.csv, metrics.json, "
                          "plots and report.md [default: runs/<data>_<backbone>_<time>]. "
                          "Example: --output runs/flowers"),
        click.option("--overwrite", is_flag=True, default=False,
                     help="Write into an existing, non-empty --output folder. "
                          "Example: --overwrite"),
        click.option("--export", type=click.Path(file_okay=False), default=None,
                     help="Also export the trained model to this folder (a new numbered "
                          "version: SavedModel, .keras, .tflite). "
                          "Example: --export saved_models/flowers"),
        click.option("--quantization", type=CommaList(QUANTIZATIONS),
                     default=",".join(DEFAULT_EXPORT_QUANTIZE), show_default=True,
                     help="TFLite files written with --export (float32, dynamic, float16, "
                          "int8; int8 is calibrated on training images). "
                          "Example: --quantization int8,float16"),
        renamed_option("--quantize", type=CommaList(QUANTIZATIONS)),
    ])


# Deprecated flag -> (its new name, the new flag's parameter name).
RENAMED = {"--quantize": ("--quantization", "quantization"),
           "--calibration-data": ("--representative-data", "representative_data"),
           "--recipes": ("--recipe", "recipe"),
           "--max-epochs": ("--fine-tune-epochs", "fine_tune_epochs")}
_DEPRECATED_SUFFIX = "_deprecated"


def renamed_option(old: str, **kwargs):
    """The hidden, deprecated flag `old` (see `RENAMED`); `take_renamed` moves its value."""
    new = RENAMED[old][0]
    dest = old.lstrip("-").replace("-", "_") + _DEPRECATED_SUFFIX
    return click.option(old, dest, hidden=True, default=None,
                        help=f"Deprecated alias of {new}. Example: {new} ...", **kwargs)


def take_renamed(params: dict, out=None) -> dict:
    """Moves the values of deprecated flags in `params` to their new names (in place).

    Raises:
        click.UsageError: Both the old and the new flag were given.
    """
    from click.core import ParameterSource

    ctx = click.get_current_context(silent=True)
    for key in [k for k in params if k.endswith(_DEPRECATED_SUFFIX)]:
        value = params.pop(key)
        if value is None:
            continue
        old = "--" + key[:-len(_DEPRECATED_SUFFIX)].replace("_", "-")
        new, name = RENAMED[old]
        source = ctx.get_parameter_source(name) if ctx is not None else None
        if source not in (None, ParameterSource.DEFAULT):
            raise click.UsageError(f"{old} is the deprecated name of {new}; give only {new}.")
        if out is None or not out.quiet:
            click.echo(f"Warning: {old} is deprecated; use {new}.", err=True)
        params[name] = value
    return params


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "run"


def run_folder(output, *, data: str, backbone: str, overwrite: bool) -> Path:
    """Returns the run folder: `output`, or ``runs/<data>_<backbone>_<time>``; checks it is free."""
    if output is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        name = Path(str(data).rstrip("/")).name or str(data)
        output = Path("runs") / f"{_slug(name)}_{_slug(backbone)}_{stamp}"
    path = Path(output).expanduser()
    if path.exists() and any(path.iterdir()) and not overwrite:
        raise FileExistsError(f"The run folder {str(path)!r} already holds files; pass "
                              "--overwrite or choose another --output.")
    return path


def resolve_image_size(kerastl, backbone: str, image_size) -> int:
    """Returns `image_size`, or the backbone's default input size."""
    if image_size is not None:
        return int(image_size)
    if backbone.startswith("hub:"):
        return 224
    return int(kerastl.get_backbone_spec(backbone).default_input_size)


def check_backbone(kerastl, backbone: str) -> None:
    """Fails with a usage error (exit code 2) for an unknown backbone name."""
    if backbone.startswith(("hub:", "kerashub:")):  # checked when the model is built
        return
    try:
        kerastl.get_backbone_spec(backbone)
    except (ValueError, TypeError) as error:
        raise click.BadParameter(str(error), param_hint="'--backbone'") from None


def get_strategy(kerastl, kind: str, out):
    """Returns the `tf.distribute.Strategy` for `kind` and says which one it is."""
    strategy = kerastl.distribute.get_strategy(kind)
    out.status(f"Strategy: {kerastl.distribute.describe(strategy)}")
    return strategy


def set_seed(seed) -> None:
    """Seeds Python, NumPy and TensorFlow (`keras.utils.set_random_seed`)."""
    if seed is not None:
        import keras

        keras.utils.set_random_seed(int(seed))


def prepare_run(kerastl, params: dict, out, *, data_spec: str, backbone: str):
    """Resolves the image size, seeds, picks the strategy and loads DATA for a run.

    Returns:
        ``(image_size, strategy, data)``; `data` is a `kerastl.data.ImageData`
        with ``train`` and ``validation``.
    """
    from kerastl.cli.loading import load_training_data

    size = resolve_image_size(kerastl, backbone, params["image_size"])
    set_seed(params["seed"])
    strategy = get_strategy(kerastl, params["strategy"], out)
    out.status(f"Loading {data_spec} at {size}x{size} ...")
    with out.working():
        data = load_training_data(kerastl, data_spec, image_size=size,
                                  batch_size=params["batch_size"],
                                  validation_split=params["validation_split"],
                                  seed=params["seed"], download=params["download"])
    out.status(str(data))
    return size, strategy, data


def start_run(kerastl, params: dict, out, *, data_spec: str):
    """The start of ``train`` and ``adapt``: checks, the run folder, DATA and the model.

    Returns:
        ``(run_dir, image_size, strategy, data, model)``: the run folder (not
        created yet), the input size, the strategy, the loaded DATA and the
        model built from ``--backbone``, ``--weights``, ``--backbone-kwargs``,
        ``--dropout`` (when the command has it) and ``--augment``.
    """
    backbone = params["backbone"]
    check_backbone(kerastl, backbone)
    run_dir = run_folder(params["output"], data=data_spec, backbone=backbone,
                         overwrite=params["overwrite"])
    size, strategy, data = prepare_run(kerastl, params, out, data_spec=data_spec,
                                       backbone=backbone)
    dropout = params.get("dropout")
    model = kerastl.build(backbone, num_classes=data.num_classes, class_names=data.class_names,
                          input_shape=(size, size, 3), weights=params["weights"],
                          backbone_kwargs=params["backbone_kwargs"],
                          head=None if dropout is None else {"dropout": dropout},
                          augmentation="default" if params["augment"] else None,
                          strategy=strategy)
    return run_dir, size, strategy, data, model


def export_model(kerastl, model, directory, *, quantization, data, out):
    """Exports `model` with `kerastl.export`; int8 is calibrated on ``data.train``."""
    eval_split = data.test if data.test is not None else data.validation
    out.status(f"Exporting to {directory} ({', '.join(quantization)}) ...")
    with out.working():
        return kerastl.export(model, directory, quantization=tuple(quantization),
                              representative_data=data.train if "int8" in quantization else None,
                              eval_data=eval_split, verbose=0)  # the summary shows it


def settings_dict(params: dict, **resolved) -> dict:
    """The run's settings for config.json: flag values (output flags left out) plus `resolved`."""
    skip = ("quiet", "json_mode", "debug", "out")
    ctx = click.get_current_context(silent=True)
    order = [p.name for p in ctx.command.params] if ctx is not None else []
    names = sorted(params, key=lambda k: order.index(k) if k in order else len(order))
    settings = {k.replace("_", "-"): (list(params[k]) if isinstance(params[k], tuple)
                                      else params[k]) for k in names if k not in skip}
    settings.update({k.replace("_", "-"): v for k, v in resolved.items()})
    if settings.get("weights") is None:
        settings["weights"] = "none"
    return settings
