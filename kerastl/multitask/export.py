"""Export of a multi-task model: a signature per task, one multi-output `.tflite`, labels per task.

Layout of one version (``directory/<version>/``)::

    saved_model/            signatures "<task>" ({probabilities, class_index}) per task,
                            and "serving_default" ({<task>_probabilities, ...} for all)
    model.keras
    model_<quantization>.tflite   one interpreter call -> one output per task (int8 too:
                                  calibrated on images drawn from every task's data);
                                  the task labels in its kerastl metadata
    labels_<task>.txt
    manifest.json           tasks (labels, outputs), artifact sizes and sha256s,
                            the largest difference of each artifact from the Keras model
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerastl._validation import check_bool, check_int
from kerastl.export import inputs, keras_format, manifest, saved_model, staging, tflite
from kerastl.export import tflite_metadata, verify
from kerastl.export.config import QUANTIZATIONS, check_version
from kerastl.multitask.heads import get_heads
from kerastl.multitask.predictor import MULTITASK, run_tflite
from kerastl.peft.core import merge

TFLITE_QUANTIZATIONS = QUANTIZATIONS


@dataclasses.dataclass
class MultiTaskExport:
    """What `kerastl.multitask.export` wrote.

    Attributes:
        path: The version folder.
        tasks: ``{task: labels}``.
        artifacts: ``{file name: size in bytes}``.
        max_abs_diff: ``{artifact: {task: largest |artifact - Keras| probability}}``.
    """

    path: str
    tasks: dict
    artifacts: dict
    max_abs_diff: dict

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _labels(heads) -> dict:
    return {t: h.class_names or [str(i) for i in range(h.num_outputs)] for t, h in heads.items()}


def _outputs(probabilities) -> dict:
    probabilities = tf.cast(probabilities, tf.float32)
    return {"probabilities": probabilities,
            "class_index": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}


def write_saved_model(model, path, tasks) -> None:
    """Writes a SavedModel with one signature per task and ``serving_default`` for all."""
    shape = (None, *model.input_shape[1:])
    spec = [tf.TensorSpec(shape, tf.float32, name="image")]
    forward = tf.function(lambda image: model(image, training=False), input_signature=spec)
    archive = keras.export.ExportArchive()
    archive.track(model)

    def every_task(image):
        out = forward(image)
        return {f"{t}_{k}": v for t in tasks for k, v in _outputs(out[t]).items()}

    archive.add_endpoint("serving_default", every_task, input_signature=spec)
    for task in tasks:
        archive.add_endpoint(task, lambda image, task=task: _outputs(forward(image)[task]),
                             input_signature=spec)
    archive.write_out(str(path), verbose=False)


def _calibration(data, input_shape, tasks, limit: int) -> np.ndarray:
    """int8 calibration images: an equal share of `limit` from each task's data, interleaved."""
    if not isinstance(data, dict):
        return inputs.representative_images(data, input_shape, limit)
    unknown = [t for t in data if t not in tasks]
    if unknown:
        raise ValueError(f"`representative_data` names unknown tasks {unknown}; the model's "
                         f"tasks are {list(tasks)}.")
    share = max(1, -(-limit // len(data)))
    parts = [inputs.representative_images(data[t], input_shape, share) for t in data]
    order = sorted((i / len(p), k, i) for k, p in enumerate(parts) for i in range(len(p)))
    return np.stack([parts[k][i] for _, k, i in order[:limit]])


def _tflite_bytes(conversion, quantization, heads, input_shape, calibration) -> bytes:
    data = tflite.convert(conversion, quantization, calibration_images=calibration
                          if quantization == "int8" else None)
    io_dtype = "uint8" if quantization == "int8" else "float32"
    info = {"task": MULTITASK, "tasks": _labels(heads), "input_shape": list(input_shape),
            "input_range": [0, 255], "input_dtype": io_dtype, "output_dtype": io_dtype,
            "quantization": quantization}
    # The labels entry names the outputs (one per task); each task's labels are in info.
    return tflite_metadata.embed_metadata(data, labels=list(heads), info=info)


def _diff(got: dict, expected: dict) -> dict:
    return {t: float(np.abs(np.asarray(got[t]) - expected[t]).max()) for t in expected}


def _check_quantization(quantization, representative_data) -> list:
    quantization = [quantization] if isinstance(quantization, str) else list(quantization)
    for q in quantization:
        if q not in QUANTIZATIONS:
            raise ValueError(f"`quantization` must be among {', '.join(map(repr, QUANTIZATIONS))}."
                             f" Received: quantization={q!r}")
    if "int8" in quantization and representative_data is None:
        raise ValueError("quantization 'int8' needs `representative_data` (calibration images: "
                         "{task: data} draws them from every task). Received: "
                         "representative_data=None")
    return quantization


def _write(model, folder: Path, heads, quantization, images, calibration) -> dict:
    """Writes every artifact into `folder`; returns their largest differences from Keras."""
    expected = {t: np.asarray(v) for t, v in model(images, training=False).items()}
    write_saved_model(model, folder / "saved_model", list(heads))
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    diffs = {"saved_model": _diff({t: loaded.signatures[t](image=tf.constant(images))[
        "probabilities"].numpy() for t in heads}, expected)}
    keras_format.save_keras(model, folder / keras_format.KERAS_FILE)
    conversion = folder / ".conversion_saved_model"
    saved_model.write_conversion_saved_model(model, conversion)
    for q in quantization:
        name = f"model_{q}.tflite"
        (folder / name).write_bytes(_tflite_bytes(conversion, q, heads, model.input_shape[1:],
                                                  calibration))
        diffs[name] = _diff(run_tflite(folder / name, images), expected)
    shutil.rmtree(conversion)
    for task, names in _labels(heads).items():
        manifest.write_labels(folder / f"labels_{task}.txt", names)
    return diffs


def export(model, directory, *, quantization=("float32",), representative_data=None,
           num_calibration_samples: int = 200, check_images=None, version=None,
           overwrite: bool = False) -> MultiTaskExport:
    """Exports a multi-task model: SavedModel (a signature per task), `.keras`, `.tflite`.

    LoRA is merged first (`kerastl.peft.merge`). Every artifact is run on the
    check images (random ones by default) and its largest difference from the
    Keras model per task is recorded. The version is written in a hidden
    staging folder and moved into place complete (`kerastl.export.staging`), as
    `kerastl.export` does: a crash never leaves a half-written version.

    Args:
        model: A multi-task model from ``kerastl.build(..., tasks=...)``.
        directory: The export folder; each call writes the next version in it.
        quantization: TFLite quantizations (``"float32"``, ``"dynamic"``,
            ``"float16"``, ``"int8"``: full integer, uint8 input of raw pixels and
            uint8 outputs, one per task).
        representative_data: int8 calibration images: ``{task: data}`` (an
            equal share of the images from each task's data, so every head's
            activations are calibrated) or one dataset / array of images in
            [0, 255] (as for `kerastl.export`).
        num_calibration_samples: How many images to calibrate on.
        check_images: Images (N, H, W, 3) in [0, 255] to verify on; default:
            the calibration images, else random ones.
        version: Version folder name (default: the next integer).
        overwrite: Replace an existing version.

    Returns:
        A `MultiTaskExport`.

    Example:
        >>> out = kerastl.multitask.export(model, "saved_models/plants",
        ...                                quantization=("float32", "int8"),
        ...                                representative_data={"species": flowers.train,
        ...                                                     "healthy": leaves.train})
        >>> out.max_abs_diff["model_float32.tflite"]["species"] < 1e-4
        True
    """
    check_bool("overwrite", overwrite)
    check_int("num_calibration_samples", num_calibration_samples, minimum=1)
    check_version(version)
    quantization = _check_quantization(quantization, representative_data)
    model = merge(model)
    heads = get_heads(model)
    input_shape = tuple(model.input_shape[1:])
    calibration = None
    if representative_data is not None:
        calibration = _calibration(representative_data, input_shape, heads,
                                   num_calibration_samples)
    images, source = verify.check_images(check_images, calibration, input_shape)
    images = np.asarray(images, "float32")
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    staging.remove_stale(root)
    name = check_version(version) or staging.next_version(root)
    target = staging.version_dir(root, name)
    staging.check_target(target, overwrite=overwrite)
    folder = staging.make_staging(target)
    try:
        diffs = _write(model, folder, heads, quantization, images, calibration)
        labels = _labels(heads)
        artifacts = {p.name: manifest.artifact_entry(p) for p in sorted(folder.iterdir())}
        facts = {"format_version": manifest.FORMAT_VERSION, "model": model.name,
                 "version": name,
                 "tasks": {t: {"labels": labels[t], "num_outputs": heads[t].num_outputs,
                               "saved_model_signature": t} for t in heads},
                 "input_shape": [int(d) for d in input_shape], "check_images": source,
                 "num_calibration_images": 0 if calibration is None else len(calibration),
                 "max_abs_diff": diffs, "artifacts": artifacts,
                 "versions": manifest.library_versions()}
        (folder / "manifest.json").write_text(json.dumps(facts, indent=2), encoding="utf-8")
        staging.publish(folder, target, overwrite=overwrite)
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    return MultiTaskExport(str(target), labels, {k: v["size_bytes"] for k, v in artifacts.items()},
                           diffs)


__all__ = ["MultiTaskExport", "TFLITE_QUANTIZATIONS", "export", "write_saved_model"]
