"""`kerastl.export`: one call from a trained model to verified, versioned artifacts.

Layout of one export (TF Serving's convention: one integer folder per version)::

    directory/
      3/
        saved_model/            serving SavedModel (see kerastl.export.saved_model)
        model.keras             native Keras file, reload with kerastl.load
        model_float32.tflite    one file per quantization
        model_dynamic.tflite
        model_float16.tflite
        model_int8.tflite       uint8 in (raw pixels), uint8 out
        labels.txt              one output name per line
        manifest.json           model facts, sizes, sha256s, metrics, versions
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from kerastl.export import config as config_lib
from kerastl.export import inputs, keras_format, manifest, saved_model, staging, tflite
from kerastl.export import tflite_metadata, verify
from kerastl.export.info import model_metadata
from kerastl.export.report import ArtifactReport, ExportReport
from kerastl.layers import ClassificationHead
from kerastl.peft.core import merge

_CONVERSION_DIR = ".conversion_saved_model"


def _say(cfg, message: str) -> None:
    if cfg.verbose:
        print(f"kerastl.export: {message}", flush=True)


def _tflite_info(info: dict, quantization: str) -> dict:
    io_dtype = "uint8" if quantization == "int8" else "float32"
    return {"task": info["task"], "class_names": info["class_names"],
            "backbone": info["backbone"], "input_shape": info["input_shape"],
            "input_range": [0, 255], "input_dtype": io_dtype, "output_dtype": io_dtype,
            "preprocessing": info["preprocessing"], "quantization": quantization}


def _write_tflite(model, folder: Path, cfg, info: dict, calibration) -> dict:
    """Writes one `.tflite` file per quantization; returns name -> manifest fields."""
    written = {}
    conversion_dir = folder / _CONVERSION_DIR
    saved_model.write_conversion_saved_model(model, conversion_dir)
    for quantization in cfg.tflite_quantizations:
        _say(cfg, f"converting to TFLite ({quantization})")
        data = tflite.convert(conversion_dir, quantization,
                              calibration_images=calibration if quantization == "int8" else None)
        data = tflite_metadata.embed_metadata(data, labels=info["labels"],
                                              info=_tflite_info(info, quantization))
        name = f"model_{quantization}.tflite"
        (folder / name).write_bytes(data)
        io_dtype = "uint8" if quantization == "int8" else "float32"
        written[name] = {"format": "tflite", "quantization": quantization,
                         "input_dtype": io_dtype, "output_dtype": io_dtype,
                         "labels_embedded": True}
    shutil.rmtree(conversion_dir)
    return written


def _write_artifacts(model, folder: Path, cfg, info: dict, calibration) -> dict:
    """Writes every requested format into `folder`; returns name -> manifest fields."""
    written = {}
    if "saved_model" in cfg.formats:
        _say(cfg, "writing SavedModel")
        signatures = saved_model.write_serving_saved_model(model, folder / "saved_model",
                                                           task=info["task"])
        written["saved_model"] = {"format": "saved_model", "quantization": None,
                                  "signatures": signatures}
    if "keras" in cfg.formats:
        _say(cfg, "writing model.keras")
        keras_format.save_keras(model, folder / keras_format.KERAS_FILE)
        written[keras_format.KERAS_FILE] = {"format": "keras", "quantization": None}
    if "tflite" in cfg.formats:
        written.update(_write_tflite(model, folder, cfg, info, calibration))
    manifest.write_labels(folder / manifest.LABELS_FILE, info["labels"])
    return written


def _verify(model, folder: Path, written: dict, info: dict, check, labels, cfg):
    """Runs every artifact; returns the Keras metrics and the artifact reports."""
    _say(cfg, f"verifying on {len(check)} images")
    reference, keras_metrics = verify.keras_reference(model, check, labels, info["task"])
    float_size = None
    if "model_float32.tflite" in written:
        float_size = (folder / "model_float32.tflite").stat().st_size
    reports = []
    for name, fields in written.items():
        entry = manifest.artifact_entry(folder / name)
        fields.update({"path": name, "size_bytes": entry["size_bytes"],
                       "sha256": entry["sha256"]})
        if "files" in entry:
            fields["files"] = entry["files"]
        metrics = verify.VERIFIERS[fields["format"]](folder / name, check, reference, labels,
                                                     info["task"])
        ratio = None if float_size is None else entry["size_bytes"] / float_size
        reports.append(ArtifactReport(name=name, format=fields["format"],
                                      quantization=fields["quantization"],
                                      size_bytes=entry["size_bytes"], sha256=entry["sha256"],
                                      size_ratio=ratio, **metrics))
    return keras_metrics, reports


def _check_directory(directory) -> Path:
    """Returns the export folder as a Path, refusing None and existing files."""
    if directory is None or not isinstance(directory, (str, os.PathLike)):
        raise TypeError("`directory` must be a folder path (str or os.PathLike). "
                        f"Received: directory={directory!r}")
    root = Path(directory)
    if str(directory) == "":
        raise ValueError("`directory` must be a folder path. Received: directory=''")
    for path in (root, *root.parents):
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(
                f"`directory` must be a folder (or a path to create one), but "
                f"{str(path)!r} is a file. Received: directory={str(directory)!r}")
    return root


def _hub_trust(model):
    """Trusts the local SavedModels of the model's own `HubBackbone` layers while verifying."""
    handles = [layer.handle for layer in model._flatten_layers()  # noqa: SLF001
               if type(layer).__name__ == "HubBackbone" and hasattr(layer, "handle")]
    if not handles:
        return contextlib.nullcontext()
    from kerastl.backbones.hub_handles import trusted_hub_models

    return trusted_hub_models(*handles)


def _publish(folder: Path, root: Path, name: str, cfg, make_report, written, info):
    """Writes the manifest and publishes the version; returns the report.

    With ``version=None`` a version that another process published first
    (between choosing the name and publishing) makes this export take the
    next free integer instead.
    """
    for _ in range(1000):
        target = staging.version_dir(root, name)
        report = make_report(name, target)
        manifest.write_manifest(folder / manifest.MANIFEST_FILE, manifest.build_manifest(
            info=info, version=name, artifacts=written, report_dict=report.to_dict()))
        try:
            staging.publish(folder, target, overwrite=cfg.overwrite)
            return report
        except FileExistsError:
            if cfg.version is not None:
                raise
            name = staging.next_version(root)
    raise FileExistsError(f"Could not find a free version in {str(root)!r}.")


def export(model, directory, *, formats=config_lib.FORMATS, quantization=None,
           representative_data=None, num_calibration_samples: int = 200, eval_data=None,
           class_names=None, version=None, overwrite: bool = False,
           verbose: int = 1) -> ExportReport:
    """Exports a kerastl model as a verified, versioned package.

    Writes ``directory/<version>/`` with a serving SavedModel, ``model.keras``,
    one ``model_<quantization>.tflite`` per quantization, ``labels.txt`` and
    ``manifest.json``; runs each artifact from disk against the Keras model;
    and only then moves the version into place in one rename, so a crash never
    leaves a half-written version (nor loses the version it replaces, see
    `kerastl.export.staging`).

    Args:
        model: A model built by `kerastl.build` (fixed input size). A LoRA
            model (`kerastl.peft`) is exported merged (`kerastl.peft.merge`).
        directory: The export folder (created if missing).
        formats: Any of ``"saved_model"``, ``"keras"``, ``"tflite"``.
        quantization: TFLite quantizations: ``"float32"``, ``"dynamic"``
            (int8 weights), ``"float16"``, ``"int8"`` (full integer, uint8
            input and output; needs `representative_data`). Default (None):
            float32, dynamic and float16, plus int8 when `representative_data`
            is given (the rule of ``kerastl export``).
        representative_data: Calibration images for int8: a `tf.data.Dataset`
            of image batches or ``(images, labels)`` batches, or an array of
            RGB images in [0, 255] at the model's input size.
        num_calibration_samples: How many images to calibrate on, spread
            evenly over `representative_data` (every k-th image, or batch of
            a dataset of known length; `kerastl.export.inputs.spread`), so
            data stored class by class calibrates on every class.
        eval_data: Optional labelled images (a `tf.data.Dataset` of
            ``(images, labels)`` batches or a tuple of arrays); adds accuracy
            and agreement per artifact to the report and manifest. Labels
            must fit the model's outputs (class indices below the number of
            classes).
        class_names: Output names; default: the head's ``class_names``.
        version: Version folder name; default: the next integer (also when
            another export takes that number first).
        overwrite: Replace an existing version.
        verbose: 1 prints progress and the report table, 0 is silent.

    Returns:
        An `ExportReport` (also saved in ``manifest.json``).

    Raises:
        ValueError: On invalid options, int8 without `representative_data`,
            a version name that would leave `directory`, labels out of range,
            or a model whose ops cannot be quantized to int8
            (`kerastl.export.QuantizationError`).
        NotADirectoryError: If `directory` (or a folder above it) is a file.
        FileExistsError: If the version exists and `overwrite` is False.

    Example:
        >>> report = kerastl.export(model, "saved_models", representative_data=train_ds,
        ...                         eval_data=val_ds)
        >>> report.artifact("model_int8.tflite").agreement
        0.99
    """
    cfg = config_lib.make_config(
        formats=formats, quantization=quantization, representative_data=representative_data,
        num_calibration_samples=num_calibration_samples, version=version,
        overwrite=overwrite, verbose=verbose)
    root = _check_directory(directory)
    model = merge(model)  # LoRA folded into the kernels: plain layers in every format
    if sum(isinstance(layer, ClassificationHead) for layer in model.layers) > 1:
        raise ValueError(f"{model.name!r} is a multi-task model: export it with "
                         "kerastl.multitask.export(model, directory) (a SavedModel signature "
                         "per task, one multi-output .tflite, labels per task).")
    info = model_metadata(model, class_names=class_names)
    input_shape = tuple(info["input_shape"])
    calibration = None
    if representative_data is not None:
        calibration = inputs.representative_images(representative_data, input_shape,
                                                   cfg.num_calibration_samples)
    eval_images, labels = (None, None)
    if eval_data is not None:
        eval_images, labels = inputs.eval_arrays(eval_data, input_shape)
        inputs.check_eval_labels(labels, task=info["task"], num_outputs=info["num_outputs"])
    check, source = verify.check_images(eval_images, calibration, input_shape)

    root.mkdir(parents=True, exist_ok=True)
    staging.remove_stale(root)
    name = cfg.version or staging.next_version(root)
    staging.check_target(staging.version_dir(root, name), overwrite=cfg.overwrite)
    folder = staging.make_staging(staging.version_dir(root, name))
    try:
        written = _write_artifacts(model, folder, cfg, info, calibration)
        with _hub_trust(model):
            keras_metrics, reports = _verify(model, folder, written, info, check, labels, cfg)
        written[manifest.LABELS_FILE] = {"format": "labels", "quantization": None,
                                         "path": manifest.LABELS_FILE,
                                         **manifest.artifact_entry(folder / manifest.LABELS_FILE)}

        def make_report(version_name, target):
            return ExportReport(path=str(target), version=version_name, task=info["task"],
                                class_names=info["labels"], artifacts=reports,
                                keras=keras_metrics, check_data=source,
                                num_check_images=len(check), runtime=tflite.runtime_name())

        report = _publish(folder, root, name, cfg, make_report, written, info)
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    if cfg.verbose:
        print(report, flush=True)
    return report
