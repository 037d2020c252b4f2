"""Export of a multi-task model: a signature per task, one multi-output `.tflite`, labels per task.

Layout of one version (``directory/<version>/``)::

    saved_model/            signatures "<task>" ({probabilities, class_index}) per task,
                            and "serving_default" ({<task>_probabilities, ...} for all)
    model.keras
    model_<quantization>.tflite   one interpreter call -> one output per task
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

from kerastl._validation import check_bool
from kerastl.export import keras_format, manifest, saved_model, staging, tflite, verify
from kerastl.export.config import QUANTIZATIONS
from kerastl.multitask.heads import get_heads
from kerastl.peft.core import merge

TFLITE_QUANTIZATIONS = ("float32", "dynamic", "float16")  # int8 needs per-task calibration


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


def _tflite_outputs(path, images) -> dict:
    runner = tflite.make_interpreter(path).get_signature_runner("serving_default")
    parts = [runner(image=images[i:i + 1]) for i in range(len(images))]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _diff(got: dict, expected: dict) -> dict:
    return {t: float(np.abs(np.asarray(got[t]) - expected[t]).max()) for t in expected}


def export(model, directory, *, quantization=("float32",), check_images=None, version=None,
           overwrite: bool = False) -> MultiTaskExport:
    """Exports a multi-task model: SavedModel (a signature per task), `.keras`, `.tflite`.

    LoRA is merged first (`kerastl.peft.merge`). Every artifact is run on the
    check images (random ones by default) and its largest difference from the
    Keras model per task is recorded.

    Args:
        model: A multi-task model from ``kerastl.build(..., tasks=...)``.
        directory: The export folder; each call writes the next version in it.
        quantization: TFLite quantizations (``"float32"``, ``"dynamic"``, ``"float16"``).
        check_images: Images (N, H, W, 3) in [0, 255] to verify on, or None.
        version: Version folder name (default: the next integer).
        overwrite: Replace an existing version.

    Returns:
        A `MultiTaskExport`.

    Example:
        >>> out = kerastl.multitask.export(model, "saved_models/plants")
        >>> out.max_abs_diff["model_float32.tflite"]["species"] < 1e-4
        True
    """
    check_bool("overwrite", overwrite)
    quantization = [quantization] if isinstance(quantization, str) else list(quantization)
    for q in quantization:
        if q not in TFLITE_QUANTIZATIONS:
            allowed = ", ".join(map(repr, TFLITE_QUANTIZATIONS))
            raise ValueError(f"`quantization` must be among {allowed} for a multi-task model "
                             f"(of {', '.join(QUANTIZATIONS)}). Received: quantization={q!r}")
    model = merge(model)
    heads = get_heads(model)
    labels = _labels(heads)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    folder = staging.version_dir(root, version or staging.next_version(root))
    staging.check_target(folder, overwrite=overwrite)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    images, source = verify.check_images(check_images, None, tuple(model.input_shape[1:]))
    images = np.asarray(images, "float32")
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
        (folder / name).write_bytes(tflite.convert(conversion, q))
        diffs[name] = _diff(_tflite_outputs(folder / name, images), expected)
    shutil.rmtree(conversion)
    for task, names in labels.items():
        manifest.write_labels(folder / f"labels_{task}.txt", names)
    artifacts = {p.name: manifest.artifact_entry(p) for p in sorted(folder.iterdir())}
    facts = {"format_version": manifest.FORMAT_VERSION, "model": model.name,
             "tasks": {t: {"labels": labels[t], "num_outputs": heads[t].num_outputs,
                           "saved_model_signature": t} for t in heads},
             "input_shape": [int(d) for d in model.input_shape[1:]], "check_images": source,
             "max_abs_diff": diffs, "artifacts": artifacts,
             "versions": manifest.library_versions()}
    (folder / "manifest.json").write_text(json.dumps(facts, indent=2), encoding="utf-8")
    return MultiTaskExport(str(folder), labels, {k: v["size_bytes"] for k, v in artifacts.items()},
                           diffs)


__all__ = ["MultiTaskExport", "TFLITE_QUANTIZATIONS", "export", "write_saved_model"]
