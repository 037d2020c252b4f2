"""`kerastl.fewshot.export`: a prototype model for apps that add classes on the device.

Layout of one version (``directory/<version>/``, published atomically as
`kerastl.export` does)::

    saved_model/                 signatures serving_default (image -> probabilities),
                                 embed (image -> embedding), classify (embedding,
                                 prototypes -> probabilities, class_index)
    model.keras                  the prototype model (kerastl.load)
    embedding_float32.tflite     signatures embed and classify
    embedding_int8.tflite        embed only (uint8 image in, embedding out); one file
                                 per quantization
    prototype_classifier.tflite  classify only (float32): for the quantized embeddings
    prototypes.npy, prototypes.json   the (K, D) prototype matrix, class names, metric
    labels.txt, manifest.json

Every file is run from disk (the SavedModel with `tf.saved_model.load`, the
``.tflite`` files with the LiteRT interpreter) against the Keras model; with
`support_data` the prototypes are also recomputed from each file's own
embeddings of the support images, as an app would (see
`kerastl.fewshot.ondevice`).
"""

from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from kerastl._validation import check_int
from kerastl.accessors import feature_extractor, model_info
from kerastl.export import inputs, keras_format, manifest, staging, tflite, verify
from kerastl.export.config import QUANTIZATIONS
from kerastl.fewshot import ondevice
from kerastl.fewshot._data import _from_dict
from kerastl.fewshot.builder import pooled_width, prototype_head
from kerastl.fewshot.layers import AVERAGING, prototype_scores
from kerastl.fewshot.prototypes import class_prototypes

CLASSIFIER_FILE = "prototype_classifier.tflite"
ADD_CLASS = ("prototype = mean of the photos' embeddings (cosine: l2-normalise each embedding, "
             "average, l2-normalise the mean; mahalanobis: the embeddings are whitened by "
             "the model already, average them as they are); append it as a row of the "
             "prototype matrix passed to the classify signature")


def _functions(model):
    head = prototype_head(model)
    extractor = feature_extractor(model)
    height, width, channels = model.input_shape[1:]
    d = pooled_width(model)
    image = tf.TensorSpec((None, height, width, channels), tf.float32, name="image")
    embedding = tf.TensorSpec((None, d), tf.float32, name="embedding")
    prototypes = tf.TensorSpec((None, d), tf.float32, name="prototypes")

    def embed(image):
        pooled = tf.cast(extractor(image, training=False), tf.float32)
        return {"embedding": head.output_layer.embed(pooled)}

    def classify(embedding, prototypes):
        logits = prototype_scores(embedding, prototypes, metric=head.metric, scale=head.scale)
        probabilities = tf.nn.softmax(logits, axis=-1)
        return {"probabilities": probabilities,
                "class_index": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    def serve(image):
        probabilities = tf.cast(model(image, training=False), tf.float32)
        return {"probabilities": probabilities,
                "class_index": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}

    return {"serving_default": (serve, [image]), ondevice.EMBED: (embed, [image]),
            ondevice.CLASSIFY: (classify, [embedding, prototypes])}, extractor


def _write_archive(model, path, keys) -> None:
    """Writes a SavedModel with exactly the signatures `keys` (the serving one first)."""
    functions, extractor = _functions(model)
    if keys[0] == "serving_default":
        archive = keras.export.ExportArchive()
        archive.track(model)
        archive.track(extractor)
        for key in keys:
            fn, signature = functions[key]
            archive.add_endpoint(key, fn, input_signature=signature)
        archive.write_out(str(path), verbose=False)
        return
    # For the converter: no "serving_default" alias (ExportArchive adds one), which
    # would become a duplicate subgraph of the .tflite file.
    module = tf.Module()
    module.model_variables = [getattr(v, "value", v) for v in model.variables]
    signatures = {key: tf.function(functions[key][0], input_signature=functions[key][1])
                  .get_concrete_function() for key in keys}
    tf.saved_model.save(module, str(path), signatures=signatures)


def _write_tflite(model, folder: Path, quantizations, calibration) -> list[str]:
    written = []
    jobs = [(CLASSIFIER_FILE, "float32", [ondevice.CLASSIFY])]
    for q in quantizations:
        keys = [ondevice.EMBED, ondevice.CLASSIFY] if q == "float32" else [ondevice.EMBED]
        jobs.append((f"embedding_{q}.tflite", q, keys))
    for name, q, keys in jobs:
        conversion = folder / f".conversion_{q}"
        _write_archive(model, conversion, keys)
        data = tflite.convert(conversion, q,
                              calibration_images=calibration if q == "int8" else None)
        (folder / name).write_bytes(data)
        shutil.rmtree(conversion)
        written.append(name)
    return written


def _support_arrays(support_data, names, input_shape):
    if isinstance(support_data, dict):
        x, y, given = _from_dict("support_data", support_data)
        unknown = [n for n in given if n not in names]
        if unknown:
            raise ValueError(f"`support_data` classes must be classes of the model {names!r:.200}"
                             f". Received: unknown class {unknown[0]!r}")
        return inputs.eval_arrays((x, np.asarray([names.index(given[i]) for i in y])),
                                  input_shape)
    return inputs.eval_arrays(support_data, input_shape)


def _check(name, q, folder, images, labels, reference, prototypes, support, metric):
    classifier = folder / (name if q == "float32" else CLASSIFIER_FILE)
    emb = ondevice.embed_tflite(folder / name, images)
    result = verify.compare("multiclass", ondevice.classify_tflite(classifier, emb, prototypes),
                            reference, labels)
    item = ondevice.OnDeviceArtifact(name, q, (folder / name).stat().st_size,
                                     result["agreement"], accuracy=result.get("accuracy"),
                                     max_abs_diff=result["max_abs_diff"])
    if support is not None:
        own = class_prototypes(ondevice.embed_tflite(folder / name, support[0]), support[1],
                               len(prototypes), metric=AVERAGING[metric])
        item.on_device_agreement = verify.compare(
            "multiclass", ondevice.classify_tflite(classifier, emb, own), reference)["agreement"]
    return item


def _check_saved_model(folder, images, labels, reference, prototypes):
    loaded = tf.saved_model.load(str(folder / "saved_model"))
    emb = loaded.signatures[ondevice.EMBED](image=tf.constant(images))["embedding"]
    probs = loaded.signatures[ondevice.CLASSIFY](embedding=emb,
                                                 prototypes=tf.constant(prototypes))
    result = verify.compare("multiclass", probs["probabilities"].numpy(), reference, labels)
    size = manifest.artifact_entry(folder / "saved_model")["size_bytes"]
    return ondevice.OnDeviceArtifact("saved_model", None, size, result["agreement"],
                                     accuracy=result.get("accuracy"),
                                     max_abs_diff=result["max_abs_diff"])


def _quantizations(quantization, representative_data):
    if quantization is None:
        quantization = ("float32", "int8") if representative_data is not None else ("float32",)
    if isinstance(quantization, str):
        quantization = (quantization,)
    chosen = []
    for q in quantization:
        if q not in QUANTIZATIONS:
            raise ValueError(f"`quantization` must be any of {QUANTIZATIONS}. "
                             f"Received: quantization={quantization!r}")
        if q not in chosen:
            chosen.append(q)
    if "int8" in chosen and representative_data is None:
        raise ValueError("int8 needs calibration images: pass `representative_data`. "
                         "Received: representative_data=None")
    return chosen


def _write_prototypes(folder: Path, head, names) -> None:
    matrix = head.prototypes.astype("float32")
    np.save(folder / "prototypes.npy", matrix)
    (folder / "prototypes.json").write_text(json.dumps({
        "metric": head.metric, "scale": head.scale, "class_names": names,
        "embedding_width": int(matrix.shape[1]), "add_class": ADD_CLASS,
        "prototypes": matrix.tolist()}) + "\n", encoding="utf-8")
    manifest.write_labels(folder / manifest.LABELS_FILE, names)


def _manifest(report, info, version, folder: Path) -> dict:
    files = {p.name: manifest.artifact_entry(p) for p in sorted(folder.iterdir())
             if not p.name.startswith(".") and p.name != manifest.MANIFEST_FILE}
    return {"format_version": manifest.FORMAT_VERSION, "kind": "fewshot_prototypes",
            "version": version,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "backbone": info.backbone, "class_names": report.class_names,
            "metric": report.metric, "scale": report.scale,
            "embedding_width": report.embedding_width,
            "input": {"height": info.input_shape[0], "width": info.input_shape[1],
                      "channels": info.input_shape[2], "dtype": "float32", "range": [0, 255]},
            "signatures": {ondevice.EMBED: {"inputs": ["image"], "outputs": ["embedding"]},
                           ondevice.CLASSIFY: {"inputs": ["embedding", "prototypes"],
                                               "outputs": ["probabilities", "class_index"]}},
            "add_class": ADD_CLASS, "artifacts": files,
            "metrics": report.to_dict(), "versions": manifest.library_versions()}


def export(model, directory, *, quantization=None, representative_data=None,
           support_data=None, eval_data=None, num_calibration_samples: int = 200,
           version=None, overwrite: bool = False, verbose: int = 1) -> ondevice.OnDeviceReport:
    """Exports a prototype model as embedding ``.tflite`` files plus its prototypes.

    Args:
        model: A prototype model (`kerastl.fewshot.build` / `add_classes`).
        directory: The export folder (``directory/<version>/`` is written).
        quantization: Quantizations of the embedding ``.tflite`` (``"float32"``,
            ``"dynamic"``, ``"float16"``, ``"int8"``). Default: float32, plus
            int8 when `representative_data` is given.
        representative_data: Calibration images for int8 (as `kerastl.export`).
        support_data: The support images the prototypes came from (dict,
            tuple or dataset, labels in the model's class order): checks that
            prototypes computed from each file's embeddings agree with Keras.
        eval_data: Labelled check images (tuple or dataset); default: the
            calibration images, else random images.
        num_calibration_samples: Calibration images used for int8.
        version: Version folder name (default: the next integer).
        overwrite: Replace an existing version.
        verbose: 1 prints the report.

    Returns:
        An `kerastl.fewshot.ondevice.OnDeviceReport` (also in ``manifest.json``).

    Example:
        >>> report = kerastl.fewshot.export(model, "apps/prototypes", support_data=support,
        ...                                 representative_data=support)
        >>> report.artifact("embedding_float32.tflite").on_device_agreement
        1.0
    """
    head = prototype_head(model)
    info = model_info(model)
    quantizations = _quantizations(quantization, representative_data)
    limit = check_int("num_calibration_samples", num_calibration_samples, minimum=1)
    shape = tuple(info.input_shape)
    names = head.class_names or [str(i) for i in range(head.num_outputs)]
    calibration = (None if representative_data is None
                   else inputs.representative_images(representative_data, shape, limit))
    images, labels = (None, None) if eval_data is None else inputs.eval_arrays(eval_data, shape)
    if labels is not None:
        inputs.check_eval_labels(labels, task="multiclass", num_outputs=head.num_outputs)
    images, source = verify.check_images(images, calibration, shape)
    support = None if support_data is None else _support_arrays(support_data, names, shape)
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    staging.remove_stale(root)
    name = str(version) if version is not None else staging.next_version(root)
    target = staging.version_dir(root, name)
    staging.check_target(target, overwrite=overwrite)
    folder = staging.make_staging(target)
    try:
        _write_archive(model, folder / "saved_model",
                       ["serving_default", ondevice.EMBED, ondevice.CLASSIFY])
        keras_format.save_keras(model, folder / keras_format.KERAS_FILE)
        written = _write_tflite(model, folder, quantizations, calibration)
        _write_prototypes(folder, head, names)
        reference, keras_metrics = verify.keras_reference(model, images, labels, "multiclass")
        prototypes = head.prototypes
        artifacts = [_check_saved_model(folder, images, labels, reference, prototypes)]
        artifacts += [_check(n, q, folder, images, labels, reference, prototypes, support,
                             head.metric)
                      for n, q in zip(written[1:], quantizations)]
        report = ondevice.OnDeviceReport(
            str(target), name, names, head.metric, head.scale, int(prototypes.shape[1]),
            artifacts, keras_metrics.get("accuracy"), len(images), source)
        manifest.write_manifest(folder / manifest.MANIFEST_FILE,
                                _manifest(report, info, name, folder))
        staging.publish(folder, target, overwrite=overwrite)
    finally:
        if folder.exists():
            shutil.rmtree(folder, ignore_errors=True)
    if verbose:
        print(report, flush=True)
    return report


OnDeviceReport = ondevice.OnDeviceReport

__all__ = ["CLASSIFIER_FILE", "OnDeviceReport", "export"]
