"""Per-task predictions from an exported multi-task model (`kerastl.load_predictor`).

`kerastl.load_predictor` returns a `MultiTaskPredictor` for every artifact of
`kerastl.multitask.export` (``model.keras``, the SavedModel, a multi-output
``.tflite`` of any quantization, int8 included) and for a multi-task ``.keras``
file: ``predict`` gives ``{task: probabilities}`` and ``top_k``
``{task: [[{"label", "index", "score"}, ...], ...]}``. Labels come from the
model's heads (``.keras``), the ``.tflite`` file's kerastl metadata, or the
version folder's ``manifest.json`` / ``labels_<task>.txt`` (SavedModel).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from kerastl.predictor import Predictor, top_k_labels

MULTITASK = "multitask"
_SUFFIX = "_probabilities"


@dataclasses.dataclass
class MultiTaskPredictor(Predictor):
    """A loaded multi-task model: one score array per task (see `kerastl.load_predictor`).

    Attributes:
        tasks: ``{task: labels}`` in output order (task names sorted, as Keras
            orders a model's dict outputs).
        labels: The task names (``task`` is ``"multitask"``).

    Example:
        >>> predictor = kerastl.load_predictor("saved_models/plants")
        >>> predictor.predict(images)["species"].shape
        (8, 5)
    """

    tasks: dict = dataclasses.field(default_factory=dict)

    def predict(self, images) -> dict:
        """Returns ``{task: float32 array (N, len(tasks[task]))}`` of probabilities.

        Args:
            images: As for `kerastl.predictor.Predictor.predict` (arrays in
                [0, 255] at the model's input size, or image file paths).

        Example:
            >>> kerastl.load_predictor("saved_models/plants/1").predict(["leaf.jpg"])["healthy"]
            array([[0.1, 0.9]], dtype=float32)
        """
        return super().predict(images)

    def top_k(self, images, k: int = 3) -> dict:
        """Returns ``{task: per image, the k best {"label", "index", "score"}}``.

        `k` is capped per task at its number of labels.

        Example:
            >>> kerastl.load_predictor("saved_models/plants").top_k(["leaf.jpg"], k=1)
            {'healthy': [[{'label': 'yes', ...}]], 'species': [[...]]}
        """
        from kerastl._validation import check_int

        k = check_int("k", k, minimum=1)
        scores = self.predict(images)
        return {t: top_k_labels(scores[t], labels, k) for t, labels in self.tasks.items()}

    def _outputs(self, array):
        outputs = self._run(array)
        return {t: np.asarray(outputs[t], "float32") for t in self.tasks}

    def _empty(self):
        return {t: np.zeros((0, len(labels)), "float32") for t, labels in self.tasks.items()}

    def _stack(self, parts):
        return {t: np.concatenate([p[t] for p in parts]) for t in self.tasks}


def _make(kind, path, input_shape, tasks: dict, run) -> MultiTaskPredictor:
    tasks = {t: [str(x) for x in tasks[t]] for t in sorted(tasks)}
    return MultiTaskPredictor(kind, str(path), tuple(int(d) for d in input_shape), MULTITASK,
                              list(tasks), run, tasks)


def is_multitask_keras(model) -> bool:
    """Whether a loaded Keras model has one named output per task."""
    return isinstance(model.output, dict)


def from_keras(model, path) -> MultiTaskPredictor:
    """A `MultiTaskPredictor` of a loaded multi-task Keras model."""
    from kerastl.multitask.heads import get_heads

    tasks = {t: h.class_names or [str(i) for i in range(h.num_outputs)]
             for t, h in get_heads(model).items()}

    def run(images):
        return {t: np.asarray(v) for t, v in model.predict_on_batch(images).items()}

    return _make("keras", path, model.input_shape[1:], tasks, run)


def _folder_labels(folder: Path, tasks, widths: dict) -> dict:
    """``{task: labels}`` from a version folder's manifest or labels files, else numbers."""
    from kerastl.predictor import MAX_LABELS_BYTES, labels_or_numbers, read_labels

    manifest = folder / "manifest.json"
    known = {}
    if manifest.is_file() and manifest.stat().st_size <= MAX_LABELS_BYTES:
        facts = json.loads(manifest.read_text(encoding="utf-8"))
        known = {t: v.get("labels") for t, v in (facts.get("tasks") or {}).items()}
    return {task: labels_or_numbers(known.get(task) or read_labels(folder,
                                                                   name=f"labels_{task}.txt"),
                                    widths[task])
            for task in tasks}


def saved_model_tasks(signature) -> list:
    """The tasks of a multi-task ``serving_default`` signature (``<task>_probabilities``), or []."""
    outputs = signature.structured_outputs
    if "probabilities" in outputs or "predictions" in outputs:
        return []
    return sorted(k[:-len(_SUFFIX)] for k in outputs if k.endswith(_SUFFIX))


def from_saved_model(loaded, path, tasks) -> MultiTaskPredictor:
    """A `MultiTaskPredictor` of a loaded `kerastl.multitask.export` SavedModel."""
    import tensorflow as tf

    fn = loaded.signatures["serving_default"]
    (input_name, spec), = fn.structured_input_signature[1].items()
    widths = {t: int(fn.structured_outputs[t + _SUFFIX].shape[-1]) for t in tasks}
    labels = _folder_labels(Path(path).parent, tasks, widths)

    def run(images):
        out = fn(**{input_name: tf.constant(images, spec.dtype)})
        return {t: out[t + _SUFFIX].numpy() for t in tasks}

    return _make("saved_model", path, spec.shape[1:], labels, run)


def run_tflite(path_or_bytes, images, *, batch_size: int = 32) -> dict:
    """Runs a multi-output `.tflite` on float images in [0, 255]; ``{output: float32 array}``.

    Integer inputs are quantized and integer outputs dequantized with the
    tensors' own parameters (an int8 export's uint8 input is the raw pixel).

    Example:
        >>> kerastl.multitask.predictor.run_tflite("1/model_int8.tflite", images)["species"]
    """
    from kerastl.export.tflite import make_interpreter

    runner = make_interpreter(path_or_bytes).get_signature_runner("serving_default")
    (name, detail), = runner.get_input_details().items()
    outputs = runner.get_output_details()
    parts = []
    for start in range(0, len(images), batch_size):
        batch = np.asarray(images[start:start + batch_size], "float32")
        if np.issubdtype(detail["dtype"], np.integer):
            scale, zero_point = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max)
        got = runner(**{name: batch.astype(detail["dtype"])})
        part = {}
        for key, value in got.items():
            if np.issubdtype(outputs[key]["dtype"], np.integer):
                scale, zero_point = outputs[key]["quantization"]
                value = (value.astype("float32") - zero_point) * scale
            part[key] = np.asarray(value, "float32")
        parts.append(part)
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def from_tflite(path, meta: dict) -> MultiTaskPredictor:
    """A `MultiTaskPredictor` of a multi-output `.tflite` with kerastl multi-task metadata."""
    info = meta["info"]
    return _make("tflite", path, info["input_shape"], info["tasks"],
                 lambda images: run_tflite(path, images))


__all__ = ["MULTITASK", "MultiTaskPredictor", "from_keras", "from_saved_model", "from_tflite",
           "is_multitask_keras", "run_tflite", "saved_model_tasks"]
