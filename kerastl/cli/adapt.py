"""``kerastl adapt SOURCE_DATA TARGET_DIR``: train on labelled source photos, adapt to unlabelled
target photos, evaluate, export, and write the same run folder as ``kerastl train``."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import click

from kerastl.adapt.methods import METHODS  # TensorFlow-free: the CLI stays lazy
from kerastl.cli import options as opts
from kerastl.cli.common import Output, import_kerastl, output_options, report_module
from kerastl.cli.config import BlocksType, config_option
from kerastl.cli.loading import check_data_spec
from kerastl.cli.train import MODEL_FILE, _fit_summary, _summary_text
from kerastl.training.recipes import RECIPES

ADAPT_FILE = "adapt.json"


def _check_folder(path, what: str) -> str:
    if not path:
        raise click.UsageError(f"Missing argument '{what}' (a folder of images), on the command "
                               f"line or in --config.")
    if not Path(path).expanduser().is_dir():
        state = "is a file, not a folder" if Path(path).exists() else "does not exist"
        raise FileNotFoundError(f"{what} {str(path)!r} {state}: pass a folder of images.")
    return str(Path(path).expanduser())


def _adapt(kerastl, model, data, target, params, out):
    adapt = importlib.import_module("kerastl.adapt")
    labelled = None
    if params["target_labelled"]:
        folder = _check_folder(params["target_labelled"], "--target-labelled")
        labelled = kerastl.data.from_directory(folder, image_size=model.input_shape[1:3],
                                               batch_size=params["batch_size"],
                                               class_names=data.class_names).train
    out.status(f"Training on the source and adapting (method {params['method']}) ...")
    with out.working():
        return adapt.fit(model, data.train, target, method=params["method"],
                         source_validation=data.validation, target_labelled=labelled,
                         source_recipe=params["recipe"],
                         trainable_blocks=params["trainable_blocks"], epochs=params["epochs"],
                         learning_rate=params["learning_rate"], batch_size=params["batch_size"],
                         seed=params["seed"], verbose=out.verbose)


def _export(kerastl, model, params, target, data, out):
    if not params["export"]:
        return None
    quantization = tuple(params["quantization"])
    out.status(f"Exporting to {params['export']} ({', '.join(quantization)}) ...")
    with out.working():
        # int8 is calibrated on the target images: the activations the model will see.
        return kerastl.export(model, params["export"], quantization=quantization,
                              representative_data=target.dataset if "int8" in quantization
                              else None, eval_data=data.validation, verbose=0)


def adapt_run(params: dict, out: Output) -> dict:
    """Runs one ``kerastl adapt`` with resolved flag values; returns the JSON result."""
    start = time.perf_counter()
    data_spec = check_data_spec(params["data"])
    target_dir = _check_folder(params["target"], "TARGET_DIR")
    kerastl = import_kerastl(debug=out.debug)
    run_dir, size, strategy, data, model = opts.start_run(kerastl, params, out,
                                                          data_spec=data_spec)
    target = importlib.import_module("kerastl.adapt.data").as_target(
        target_dir, input_shape=model.input_shape, batch_size=params["batch_size"])
    out.status(f"Target: {target.num_examples} images in {target_dir}")
    report = _adapt(kerastl, model, data, target, params, out)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_path = run_dir / MODEL_FILE
    model.save(model_path)
    export_report = _export(kerastl, model, params, target, data, out)
    settings = opts.settings_dict(params, image_size=size, data=data_spec, target=target_dir)
    adapt_dict = report.to_dict()
    adapt_dict["source_fit"] = None if report.source_fit is None else _fit_summary(
        report.source_fit)
    (run_dir / ADAPT_FILE).write_text(json.dumps(adapt_dict, indent=2, default=str))
    out.status("Evaluating and writing the run report ...")
    with out.working():
        run = report_module()(run_dir, model=model, fit_report=report.source_fit, eval_data=data,
                              export_report=export_report, config=settings,
                              title=f"kerastl adapt: {data_spec} -> {target_dir} with "
                                    f"{params['backbone']}")
    seconds = time.perf_counter() - start
    result = {"run_dir": str(run_dir), "model": str(model_path), "report": str(run.file("report")),
              "adapt_report": str(run_dir / ADAPT_FILE),
              "metrics": {k: run.metrics[k] for k in ("accuracy", "macro_f1", "num_examples")
                          if run.metrics and k in run.metrics},
              "adapt": adapt_dict,
              "export": None if export_report is None else export_report.to_dict(),
              "seconds": seconds}
    text = "\n".join([str(report), _summary_text(run, model_path, export_report, seconds)])
    out.result(result, text, quiet_text=str(run_dir))
    return result


@click.command("adapt")
@opts.data_model_options
@click.argument("target", required=False, metavar="TARGET_DIR")
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="Adaptation: auto (a shift report, then the first method that keeps the "
                   "source validation accuracy within 1 point), source_only, adabn, tent, "
                   "coral, deep_coral, mmd, dann, daume and fine_tune_target (these two need "
                   "--target-labelled). Example: --method coral")
@click.option("--recipe", type=click.Choice(RECIPES), default="auto", show_default=True,
              help="kerastl.fit recipe of the source training. Example: --recipe two_stage")
@click.option("--target-labelled", type=click.Path(file_okay=False), default=None,
              help="A few labelled target images (one folder per class) for daume and "
                   "fine_tune_target. Example: --target-labelled phone_labelled/")
@click.option("--trainable-blocks", type=BlocksType(), default=None,
              help="Top blocks the deep methods (default 2) and tent (default 4) train. "
                   "Example: --trainable-blocks 2")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of the deep methods (default 10), tent (3) and fine_tune_target "
                   "(30). Example: --epochs 5")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Adam rate of the deep methods (default 1e-4), tent and fine_tune_target "
                   "(1e-3). Example: --learning-rate 3e-4")
@opts.run_export_options
@config_option
@output_options
def adapt_command(*, out: Output, **params):
    """Train on the labelled photos of SOURCE_DATA and adapt to the unlabelled photos in
    TARGET_DIR (another camera, lighting, weather), then write a run folder.

    SOURCE_DATA is a folder with one subfolder of images per class (as for
    `kerastl train`). TARGET_DIR is a folder of images; class folders inside
    are read as images and their names ignored. The run folder is the one of
    `kerastl train` plus adapt.json (the shift report and every method
    tried); --export writes the adapted model (int8 calibrated on the target
    images).

    \b
    Examples:
      kerastl adapt flowers/ phone_photos/ --export saved_models/flowers_phone
      kerastl adapt flowers/ phone_photos/ --method coral --recipe feature_extraction
      kerastl adapt flowers/ phone_photos/ --method daume --target-labelled phone_labelled/
    """
    adapt_run(opts.take_renamed(params, out), out)
