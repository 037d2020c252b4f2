"""`kerastl.load_predictor`: run any exported model on images, the way training read them.

One `Predictor` type serves a ``.keras`` file, a ``.tflite`` file (float or
int8, run with the TFLite runtime as on a phone), a SavedModel folder, an
exported version folder (``saved_models/flowers/1``: its ``model.keras``,
else its SavedModel) or an export folder (its newest version). Its
``path``/``kind`` say which artifact was actually loaded. A multi-task
model's artifacts give a `kerastl.multitask.MultiTaskPredictor` (results
``{task: ...}``).

Image files are decoded by the same code as `kerastl.data.from_directory`
(`kerastl.data.scan` picks the decoder, `kerastl.data.pipeline` decodes and
resizes), so a 16-bit PNG, a palette GIF or a CMYK JPEG gets the same pixels
at prediction time as in training. Unreadable or oversized files are skipped
and reported by name, never fatal.

Example:
    >>> predictor = kerastl.load_predictor("saved_models/flowers")
    >>> predictor.top_k(["rose.jpg"], k=2)
    [[{'label': 'rose', 'index': 2, 'score': 0.91}, {'label': 'tulip', ...}]]
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kerastl._validation import check_int
from kerastl.predictor_images import DEFAULT_MAX_PIXELS, image_files, read_images

LABELS_FILE = "labels.txt"
KERAS_FILE = "model.keras"
MAX_LABELS_BYTES = 4 << 20  # 4 MiB: ~100k labels; a bigger labels.txt is not a labels file


@dataclasses.dataclass
class FileScores:
    """What `Predictor.predict_files` computed.

    Attributes:
        paths: The files that were read, in order (one row of `scores` each).
        scores: float32 array ``(len(paths), len(labels))``; for a multi-task
            model ``{task: array (len(paths), len(task labels))}``.
        skipped: ``(path, reason)`` of every file that could not be used.
    """

    paths: list
    scores: np.ndarray
    skipped: list


@dataclasses.dataclass
class Predictor:
    """A loaded model of any exported format (see `kerastl.load_predictor`).

    Attributes:
        kind: ``"keras"``, ``"saved_model"`` or ``"tflite"``.
        path: The artifact that was loaded (a file, or the SavedModel folder).
        input_shape: ``(height, width, channels)``.
        task: ``"multiclass"``, ``"binary"``, ``"multilabel"`` or ``"regression"``.
        labels: One name per output column (a binary model has two).
    """

    kind: str
    path: str
    input_shape: tuple
    task: str
    labels: list
    _run: Callable = dataclasses.field(repr=False)

    def predict(self, images) -> np.ndarray:
        """Returns the model's scores for images.

        Args:
            images: RGB pixels in [0, 255], an array ``(N, H, W, 3)`` or
                ``(H, W, 3)`` at the model's input size, or image file
                path(s), decoded and resized as `kerastl.data.from_directory`
                does (a file that cannot be read raises; use
                `predict_files` to skip such files).

        Returns:
            float32 array ``(N, len(labels))``: probabilities for
            classification (a binary model's two columns are ``[1 - p, p]``),
            the raw outputs for regression.

        Example:
            >>> kerastl.load_predictor("saved_models/flowers").predict(["rose.jpg"]).shape
            (1, 5)
        """
        if _is_paths(images):
            result = self.predict_files(images)
            if result.skipped:
                path, reason = result.skipped[0]
                raise ValueError(f"Cannot use image {str(path)!r}: {reason}")
            return result.scores
        array = self._check_images(images)
        if len(array) == 0:
            return self._empty()
        return self._outputs(array)

    def _outputs(self, array):
        outputs = np.asarray(self._run(array), "float32")
        if self.task == "binary" and outputs.ndim == 2 and outputs.shape[1] == 1:
            outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
        return outputs

    def _empty(self):
        return np.zeros((0, len(self.labels)), "float32")

    @staticmethod
    def _stack(parts):
        return np.concatenate(parts)

    def top_k(self, images, k: int = 3) -> list[list[dict]]:
        """Returns the `k` best labels of each image, best first.

        Args:
            images: As for `predict`.
            k: How many labels per image (at most ``len(labels)``).

        Returns:
            Per image, a list of ``{"label", "index", "score"}`` dicts.

        Example:
            >>> kerastl.load_predictor("model.keras").top_k(["rose.jpg"], k=1)[0][0]["label"]
            'rose'
        """
        k = check_int("k", k, minimum=1)
        if self.task == "regression":
            raise ValueError("`top_k` needs a classification model; this one's task is "
                             "'regression' (use `predict`). Received: task='regression'")
        return top_k_labels(self.predict(images), self.labels, k)

    def predict_files(self, paths, *, batch_size: int = 32,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> FileScores:
        """Scores image files, skipping (and naming) those that cannot be used.

        Args:
            paths: Image files, or folders (their image files, sorted).
            batch_size: Images decoded and run at a time.
            max_pixels: Images with more pixels (width x height) are skipped
                before they are decoded (a decompression-bomb guard, as
                `kerastl.data.from_directory`'s ``max_image_pixels``); None: no limit.

        Returns:
            A `FileScores`.

        Example:
            >>> result = kerastl.load_predictor("model.keras").predict_files(["photos/"])
            >>> result.skipped
            [('photos/broken.jpg', 'truncated or corrupt JPEG (...)')]
        """
        batch_size = check_int("batch_size", batch_size, minimum=1)
        files = image_files([paths] if isinstance(paths, (str, os.PathLike)) else paths)
        done, parts, skipped = [], [], []
        for start in range(0, len(files), batch_size):
            images, read, bad = read_images(files[start:start + batch_size],
                                            self.input_shape[:2], max_pixels=max_pixels)
            skipped += bad
            if read:
                done += read
                parts.append(self.predict(images))
        return FileScores(done, self._stack(parts) if parts else self._empty(), skipped)

    def _check_images(self, images) -> np.ndarray:
        array = np.asarray(images, dtype="float32")
        if array.ndim == 3:
            array = array[None]
        expected = tuple(int(d) for d in self.input_shape)
        if array.ndim != 4 or tuple(array.shape[1:]) != expected:
            raise ValueError(f"`images` must have shape (N, {', '.join(map(str, expected))}) "
                             f"(RGB in [0, 255]) for this model. Received: images of shape "
                             f"{array.shape}")
        if not np.isfinite(array).all():
            raise ValueError("`images` must hold finite pixel values in [0, 255]. Received: "
                             "images with NaN or infinite values")
        return array


def _is_paths(images) -> bool:
    if isinstance(images, (str, os.PathLike)):
        return True
    return isinstance(images, (list, tuple)) and bool(images) and all(
        isinstance(x, (str, os.PathLike)) for x in images)


def top_k_labels(scores: np.ndarray, labels: list, k: int) -> list[list[dict]]:
    """Returns, per row of `scores`, the `k` best ``{"label", "index", "score"}`` (ties: lower
    index first).

    Example:
        >>> kerastl.predictor.top_k_labels(numpy.array([[0.2, 0.8]]), ["cat", "dog"], 1)
        [[{'label': 'dog', 'index': 1, 'score': 0.800000011920929}]]
    """
    scores = np.asarray(scores)
    k = min(int(k), scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[{"label": labels[j], "index": int(j), "score": float(row[j])} for j in idx]
            for row, idx in zip(scores, order)]


def read_labels(*folders, name: str = LABELS_FILE) -> list | None:
    """Returns the lines of the first labels file `name` found in `folders`, or None.

    Raises:
        ValueError: The file is larger than `MAX_LABELS_BYTES`.
    """
    for folder in folders:
        path = Path(folder) / name
        if path.is_file():
            if path.stat().st_size > MAX_LABELS_BYTES:
                raise ValueError(f"{str(path)!r} is {path.stat().st_size:,} bytes, too large "
                                 f"for a labels file (at most {MAX_LABELS_BYTES:,}).")
            return path.read_text(encoding="utf-8", errors="replace").splitlines()
    return None


def labels_or_numbers(labels, count: int) -> list:
    """`labels` as strings when there are `count` of them, else ``["0", "1", ...]``."""
    if labels and len(labels) == count:
        return [str(x) for x in labels]
    return [str(i) for i in range(count)]


def _keras(path: Path) -> Predictor:
    import kerastl

    model = kerastl.load(path, compile=False)
    from kerastl.multitask import predictor as multitask

    if multitask.is_multitask_keras(model):
        return multitask.from_keras(model, path)
    try:
        info = kerastl.model_info(model)
        task, names, shape = info.task, info.class_names, tuple(info.input_shape)
    except ValueError:
        task, names, shape = "multiclass", None, tuple(model.input_shape[1:])
    width = 2 if task == "binary" else int(model.output_shape[-1])
    return Predictor("keras", str(path), shape, task, labels_or_numbers(names, width),
                     lambda x: model.predict_on_batch(x))


def _saved_model(path: Path) -> Predictor:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"The SavedModel {str(path)!r} has no 'serving_default' signature.")
    fn = loaded.signatures["serving_default"]
    from kerastl.multitask import predictor as multitask

    tasks = multitask.saved_model_tasks(fn)
    if tasks:
        return multitask.from_saved_model(loaded, path, tasks)
    (input_name, spec), = fn.structured_input_signature[1].items()
    shape = tuple(int(d) for d in spec.shape[1:])
    outputs = fn.structured_outputs
    key = "probabilities" if "probabilities" in outputs else (
        "predictions" if "predictions" in outputs else next(iter(outputs)))
    width = int(outputs[key].shape[-1])
    task = "regression" if key == "predictions" else "multiclass"
    labels = labels_or_numbers(read_labels(path, path.parent), width)

    def run(images):
        return fn(**{input_name: tf.constant(images, spec.dtype)})[key].numpy()

    return Predictor("saved_model", str(path), shape, task, labels, run)


def _tflite(path: Path) -> Predictor:
    import kerastl

    meta = kerastl.export.read_tflite_metadata(path)
    info = meta.get("info", {})
    if "tasks" in info:
        from kerastl.multitask.predictor import from_tflite

        return from_tflite(path, meta)
    shape = tuple(info.get("input_shape") or ())
    if len(shape) != 3:
        from kerastl.export.tflite import make_interpreter

        interpreter = make_interpreter(str(path))
        shape = tuple(int(d) for d in interpreter.get_input_details()[0]["shape"][1:])
    task = info.get("task", "multiclass")
    labels = meta.get("labels") or read_labels(path.parent)

    def run(images):
        return kerastl.predict_tflite(path, images)

    width = len(labels) if labels else None
    if width is None:
        width = int(run(np.zeros((1, *shape), "float32")).shape[-1])
        width = 2 if task == "binary" and width == 1 else width
    return Predictor("tflite", str(path), shape, task, labels_or_numbers(labels, width), run)


def resolve_artifact(path) -> tuple[str, Path]:
    """Returns ``(kind, artifact)``: what `load_predictor(path)` loads.

    A version folder gives its ``model.keras``, else its ``saved_model/``;
    an export folder gives its newest version's.

    Raises:
        FileNotFoundError: Nothing loadable at `path`.
        ValueError: A file that is neither ``.keras`` nor ``.tflite``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"Model {str(path)!r} does not exist: pass a .keras or .tflite "
                                "file, a SavedModel folder or a folder written by "
                                "kerastl.export.")
    if path.is_file():
        kinds = {".tflite": "tflite", ".keras": "keras"}
        if path.suffix.lower() not in kinds:
            raise ValueError(f"`path` must be a .keras or .tflite file, or a folder. "
                             f"Received: path={str(path)!r}")
        return kinds[path.suffix.lower()], path
    if (path / "saved_model.pb").is_file():
        return "saved_model", path
    if (path / KERAS_FILE).is_file():
        return "keras", path / KERAS_FILE
    if (path / "saved_model" / "saved_model.pb").is_file():
        return "saved_model", path / "saved_model"
    from kerastl.export.keras_format import latest_version

    return resolve_artifact(latest_version(path))


def load_predictor(path) -> Predictor:
    """Loads any exported model as a `Predictor`.

    Args:
        path: A ``.keras`` or ``.tflite`` file, a SavedModel folder, an
            exported version folder (``saved_models/flowers/1``) or an export
            folder (its newest version).

    Returns:
        A `Predictor`; its ``kind`` and ``path`` name the artifact loaded. A
        multi-task model (`kerastl.multitask.export`, or a multi-task
        ``.keras``) gives a `kerastl.multitask.MultiTaskPredictor`, whose
        ``predict`` and ``top_k`` return ``{task: ...}``.

    Example:
        >>> predictor = kerastl.load_predictor("saved_models/flowers/1/model_int8.tflite")
        >>> predictor.predict(images).argmax(axis=-1)
    """
    kind, artifact = resolve_artifact(path)
    if kind == "tflite":
        return _tflite(artifact)
    if kind == "keras":
        return _keras(artifact)
    return _saved_model(artifact)
