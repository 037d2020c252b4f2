"""Runs each exported artifact and compares it with the Keras model.

Every artifact is loaded from disk the way a user would load it (the
SavedModel with `tf.saved_model.load`, `model.keras` with `kerastl.load`,
`.tflite` files with the LiteRT interpreter) and run on the same images as
the Keras model. Decisions are the top class (``"multiclass"``), ``p > 0.5``
(``"binary"``, and per label for ``"multilabel"``); ``"regression"`` reports
the mean absolute error instead of accuracy.
"""

from __future__ import annotations

import time

import numpy as np
import tensorflow as tf

from kerastl.export import keras_format, saved_model, tflite

LATENCY_IMAGES = 20
_RANDOM_CHECK_IMAGES = 16


def check_images(eval_images, calibration_images, input_shape) -> tuple[np.ndarray, str]:
    """Returns the images artifacts are compared on, and where they came from."""
    if eval_images is not None:
        return eval_images, "eval_data"
    if calibration_images is not None:
        return calibration_images[:64], "representative_data"
    rng = np.random.default_rng(0)
    images = (rng.random((_RANDOM_CHECK_IMAGES, *input_shape)) * 255.0).astype("float32")
    return images, "random"


def _decisions(task: str, outputs: np.ndarray):
    if task == "multiclass":
        return outputs.argmax(axis=-1)
    if task in ("binary", "multilabel"):
        return (outputs > 0.5).astype("int64").reshape(len(outputs), -1)
    return None


def _label_decisions(task: str, labels: np.ndarray, num_outputs: int):
    labels = np.asarray(labels)
    if task == "multiclass" and labels.ndim == 2 and labels.shape[1] == num_outputs > 1:
        return labels.argmax(axis=-1)  # one-hot labels
    if task == "multiclass":
        return labels.reshape(-1).astype("int64")
    return (labels > 0.5).astype("int64").reshape(len(labels), -1)


def compare(task: str, outputs, reference, labels=None) -> dict:
    """Returns accuracy (or mae), agreement and max_abs_diff of `outputs`.

    Args:
        task: The model's task.
        outputs: Artifact outputs, in the layout of ``model.predict``.
        reference: The Keras model's outputs on the same images.
        labels: Optional true labels.

    Returns:
        A dict with ``max_abs_diff`` and, depending on the task and labels,
        ``agreement``, ``accuracy`` and ``mae``.

    Example:
        >>> kerastl.export.verify.compare("multiclass", probs, keras_probs, labels)["agreement"]
        1.0
    """
    outputs = np.asarray(outputs, "float32").reshape(reference.shape)
    result = {"max_abs_diff": float(np.max(np.abs(outputs - reference)))}
    decided = _decisions(task, outputs)
    if decided is not None:
        result["agreement"] = float(np.mean(decided == _decisions(task, reference)))
    if labels is not None and decided is not None:
        truth = _label_decisions(task, labels, reference.shape[-1])
        result["accuracy"] = float(np.mean(decided == truth.reshape(decided.shape)))
    elif labels is not None:
        result["mae"] = float(np.mean(np.abs(outputs - np.asarray(labels).reshape(outputs.shape))))
    return result


def _time_calls(fn, images) -> float:
    """Mean milliseconds of `fn` on batches of one image, after two warm-up calls."""
    for image in images[:2]:
        fn(image[None])
    start = time.perf_counter()
    for image in images:
        fn(image[None])
    return 1000.0 * (time.perf_counter() - start) / max(len(images), 1)


def _keras_forward(model, images):
    """Returns a traced forward pass of `model` and its outputs on `images` (batches of 32)."""
    spec = tf.TensorSpec((None, *images.shape[1:]), tf.float32)
    forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
    outputs = np.concatenate([forward(tf.constant(images[i:i + 32])).numpy()
                              for i in range(0, len(images), 32)])
    return forward, outputs.astype("float32")


def keras_reference(model, images, labels, task: str) -> tuple[np.ndarray, dict]:
    """Returns the Keras model's outputs and its metrics (accuracy, latency)."""
    forward, reference = _keras_forward(model, images)
    metrics = compare(task, reference, reference, labels)
    metrics["latency_ms"] = _time_calls(lambda x: forward(tf.constant(x)),
                                        images[:LATENCY_IMAGES])
    metrics.pop("agreement", None)
    metrics.pop("max_abs_diff", None)
    return reference, metrics


def verify_saved_model(path, images, reference, labels, task: str) -> dict:
    """Loads the SavedModel with `tf.saved_model.load` and compares it."""
    loaded = tf.saved_model.load(str(path))
    outputs = saved_model.predict_saved_model(loaded, images, task=task)
    result = compare(task, outputs, reference, labels)
    serve = loaded.signatures["serving_default"]
    result["latency_ms"] = _time_calls(lambda x: serve(image=tf.constant(x)),
                                       images[:LATENCY_IMAGES])
    return result


def verify_keras(path, images, reference, labels, task: str) -> dict:
    """Reloads `model.keras` with `kerastl.load` (safe mode) and compares it."""
    forward, outputs = _keras_forward(keras_format.load(path, compile=False), images)
    result = compare(task, outputs, reference, labels)
    result["latency_ms"] = _time_calls(lambda x: forward(tf.constant(x)),
                                       images[:LATENCY_IMAGES])
    return result


def verify_tflite(path, images, reference, labels, task: str) -> dict:
    """Runs a `.tflite` file with the LiteRT interpreter and compares it."""
    outputs = tflite.predict_tflite(path, images)
    result = compare(task, outputs, reference, labels)
    interpreter = tflite.make_interpreter(path)
    interpreter.allocate_tensors()
    result["latency_ms"] = tflite.latency_ms(interpreter, images[:LATENCY_IMAGES])
    return result


VERIFIERS = {"saved_model": verify_saved_model, "keras": verify_keras, "tflite": verify_tflite}
