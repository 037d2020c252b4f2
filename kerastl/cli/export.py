"""``kerastl export MODEL --out DIR``: SavedModel, .keras and quantized .tflite, verified."""

from __future__ import annotations

import click

from kerastl.cli.common import Output, import_kerastl, output_options
from kerastl.cli.config import CommaList, config_option
from kerastl.cli.loading import SPLIT_CHOICES, has_ready_split, is_tfds, load_eval_data
from kerastl.cli.options import QUANTIZATIONS, renamed_option, take_renamed

FORMATS = ("saved_model", "keras", "tflite")
NO_CALIBRATION_QUANTIZE = ("float32", "dynamic", "float16")


def _calibration_split(spec: str) -> str:
    return "train" if is_tfds(spec) or has_ready_split(spec) else "all"


def _quantization(quantization, representative_data) -> tuple:
    if quantization is None:
        return QUANTIZATIONS if representative_data else NO_CALIBRATION_QUANTIZE
    if "int8" in quantization and not representative_data:
        raise click.UsageError("--quantization int8 needs --representative-data (a few hundred "
                               "training images to calibrate the integer ranges).")
    return tuple(quantization)


@click.command("export")
@click.argument("model", type=click.Path(), required=False)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Export folder; each export adds a numbered version inside it. "
                   "Required. Example: --out saved_models/flowers")
@click.option("--quantization", type=CommaList(QUANTIZATIONS), default=None,
              help="TFLite files to write: float32, dynamic (int8 weights), float16, int8 "
                   "(full integer) [default: all four with --representative-data, else the "
                   "first three]. Example: --quantization int8,float16")
@renamed_option("--quantize", type=CommaList(QUANTIZATIONS))
@click.option("--formats", type=CommaList(FORMATS), default=",".join(FORMATS),
              show_default=True, help="Artifacts to write. Example: --formats tflite")
@click.option("--representative-data", default=None,
              help="Images to calibrate int8 on: a folder of class folders (its train/ split "
                   "when split) or tfds:NAME. Example: --representative-data flowers/")
@renamed_option("--calibration-data")
@click.option("--num-calibration-samples", type=click.IntRange(min=1), default=200,
              show_default=True, help="How many calibration images to use. "
                                      "Example: --num-calibration-samples 500")
@click.option("--eval-data", default=None,
              help="Labelled images to measure every artifact's accuracy and agreement with "
                   "the Keras model on. Example: --eval-data flowers/val")
@click.option("--eval-split", type=click.Choice(SPLIT_CHOICES), default="auto",
              show_default=True,
              help="Which images of --eval-data (as in `kerastl evaluate --split`). "
                   "Example: --eval-split validation")
@click.option("--version", default=None,
              help="Version folder name [default: the next integer]. Example: --version 2")
@click.option("--overwrite", is_flag=True, default=False,
              help="Replace an existing version of the same name. Example: --overwrite")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per batch while reading data. Example: --batch-size 16")
@config_option(example="export.yaml")
@output_options
def export_command(model, *, out_dir, out: Output, **params):
    """Export a trained model for serving and phones, and check every
    artifact against the Keras model.

    MODEL is a .keras file (e.g. runs/NAME/model.keras) or an exported version
    folder. The export writes --out/<version>/ with a SavedModel, model.keras,
    model_<quantization>.tflite files, labels.txt and manifest.json.

    \b
    Examples:
      kerastl export runs/flowers/model.keras --out saved_models/flowers
      kerastl export runs/flowers/model.keras --out saved_models/flowers \\
          --quantization int8 --representative-data flowers/ --eval-data flowers/ \\
          --eval-split validation
    """
    directory = out_dir
    take_renamed(params, out)
    if not model:
        raise click.UsageError("Missing argument 'MODEL' (a .keras file or an exported "
                               "version folder).")
    if not directory:
        raise click.UsageError("Missing option '--out' (the export folder).")
    if "tflite" in params["formats"]:
        quantization = _quantization(params["quantization"], params["representative_data"])
    else:
        quantization = ("float32",)  # not used without tflite

    kerastl = import_kerastl(debug=out.debug)
    loaded = kerastl.load(model, compile=False)
    size = tuple(int(d) for d in loaded.input_shape[1:3])
    names = kerastl.model_info(loaded).class_names
    calibration = evaluation = None
    if params["representative_data"]:
        spec = params["representative_data"]
        out.status(f"Loading calibration images from {spec} ...")
        calibration, _, _ = load_eval_data(kerastl, spec, image_size=size,
                                           batch_size=params["batch_size"],
                                           split=_calibration_split(spec))
    if params["eval_data"]:
        out.status(f"Loading evaluation images from {params['eval_data']} ...")
        evaluation, _, _ = load_eval_data(kerastl, params["eval_data"], image_size=size,
                                          batch_size=params["batch_size"],
                                          split=params["eval_split"], class_names=names)
    out.status(f"Exporting to {directory} ({', '.join(quantization)}) ...")
    with out.working():
        report = kerastl.export(loaded, directory, formats=params["formats"],
                                quantization=quantization,
                                representative_data=calibration,
                                num_calibration_samples=params["num_calibration_samples"],
                                eval_data=evaluation, version=params["version"],
                                overwrite=params["overwrite"], verbose=0)
    # The report table once, as the result (kerastl.export's own print is off).
    out.result(report.to_dict(), str(report), quiet_text=report.path)
