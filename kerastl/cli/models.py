"""One way to run any model file the CLI is given: ``.keras``, SavedModel or ``.tflite``.

`open_model` returns a `Predictor` whose ``predict(images)`` takes RGB
float32 images in [0, 255] at the model's input size and returns one score
per label (for a binary model the two columns ``[1 - p, p]``), so
`kerastl evaluate` and `kerastl predict` treat every format alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
LABELS_FILE = "labels.txt"


@dataclasses.dataclass
class Predictor:
    """A loaded model of any format.

    Attributes:
        kind: ``"keras"``, ``"saved_model"`` or ``"tflite"``.
        path: What was loaded.
        input_shape: ``(height, width, channels)``.
        task: The model's task (``"multiclass"`` when unknown).
        labels: One name per output column.
        run: ``images -> raw outputs``.
    """

    kind: str
    path: str
    input_shape: tuple
    task: str
    labels: list
    run: Callable

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Returns scores ``(N, len(labels))`` for RGB images in [0, 255]."""
        outputs = np.asarray(self.run(np.asarray(images, "float32")), "float32")
        if self.task == "binary" and outputs.ndim == 2 and outputs.shape[1] == 1:
            outputs = np.concatenate([1.0 - outputs, outputs], axis=1)
        return outputs


def _labels_or_numbers(labels, count: int) -> list:
    if labels and len(labels) == count:
        return [str(x) for x in labels]
    return [str(i) for i in range(count)]


def _read_labels(*folders: Path) -> list | None:
    for folder in folders:
        path = folder / LABELS_FILE
        if path.is_file():
            return [line for line in path.read_text(encoding="utf-8").splitlines() if line]
    return None


def _keras(kerastl, path: Path) -> Predictor:
    model = kerastl.load(path, compile=False)
    try:
        info = kerastl.model_info(model)
        task, names, shape = info.task, info.class_names, tuple(info.input_shape)
    except ValueError:
        task, names, shape = "multiclass", None, tuple(model.input_shape[1:])
    width = 2 if task == "binary" else int(model.output_shape[-1])
    return Predictor("keras", str(path), shape, task, _labels_or_numbers(names, width),
                     lambda x: model.predict_on_batch(x))


def _saved_model(path: Path) -> Predictor:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(path))
    if "serving_default" not in loaded.signatures:
        raise ValueError(f"The SavedModel {str(path)!r} has no 'serving_default' signature.")
    fn = loaded.signatures["serving_default"]
    (input_name, spec), = fn.structured_input_signature[1].items()
    shape = tuple(int(d) for d in spec.shape[1:])
    outputs = fn.structured_outputs
    key = "probabilities" if "probabilities" in outputs else (
        "predictions" if "predictions" in outputs else next(iter(outputs)))
    width = int(outputs[key].shape[-1])
    task = "regression" if key == "predictions" else "multiclass"
    labels = _labels_or_numbers(_read_labels(path, path.parent), width)

    def run(images):
        return fn(**{input_name: tf.constant(images, spec.dtype)})[key].numpy()

    return Predictor("saved_model", str(path), shape, task, labels, run)


def _tflite(kerastl, path: Path) -> Predictor:
    meta = kerastl.export.read_tflite_metadata(path)
    info = meta.get("info", {})
    shape = tuple(info.get("input_shape") or ())
    if len(shape) != 3:
        from ai_edge_litert.interpreter import Interpreter

        interpreter = Interpreter(model_path=str(path))
        shape = tuple(int(d) for d in interpreter.get_input_details()[0]["shape"][1:])
    task = info.get("task", "multiclass")
    labels = meta.get("labels") or _read_labels(path.parent)
    width = len(labels) if labels else None

    def run(images):
        return kerastl.predict_tflite(path, images)

    if width is None:
        width = int(run(np.zeros((1, *shape), "float32")).shape[-1])
        width = 2 if task == "binary" and width == 1 else width
    return Predictor("tflite", str(path), shape, task, _labels_or_numbers(labels, width), run)


def open_model(kerastl, path) -> Predictor:
    """Loads a ``.keras`` file, a ``.tflite`` file, a SavedModel folder, an exported
    version folder (``saved_models/flowers/1``) or an export folder (its newest version).

    Args:
        kerastl: The kerastl module.
        path: The model path.

    Returns:
        A `Predictor`.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"MODEL {str(path)!r} does not exist: pass a .keras or .tflite "
                                "file, a SavedModel folder or a folder written by kerastl export.")
    if path.is_file():
        if path.suffix == ".tflite":
            return _tflite(kerastl, path)
        if path.suffix == ".keras":
            return _keras(kerastl, path)
        raise ValueError(f"MODEL {str(path)!r} must be a .keras or .tflite file, or a folder.")
    if (path / "saved_model.pb").is_file():
        return _saved_model(path)
    if (path / "model.keras").is_file():
        return _keras(kerastl, path)
    if (path / "saved_model" / "saved_model.pb").is_file():
        return _saved_model(path / "saved_model")
    return _keras(kerastl, path)


def image_files(paths) -> list[Path]:
    """Expands IMAGE arguments: files as given, folders to their image files (sorted)."""
    out = []
    for item in paths:
        item = Path(item).expanduser()
        if item.is_dir():
            found = sorted(p for p in item.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"No image files in folder {str(item)!r}.")
            out += found
        elif item.is_file():
            out.append(item)
        else:
            raise FileNotFoundError(f"IMAGE {str(item)!r} does not exist.")
    return out


def read_image(path: Path, size: tuple) -> np.ndarray:
    """Reads an image as RGB float32 in [0, 255], resized (bilinear) to ``(height, width)``.

    The same decoding as the exported SavedModel's ``serving_bytes``
    signature: the whole image, resized without cropping.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image = image.convert("RGB").resize((int(size[1]), int(size[0])),
                                                Image.Resampling.BILINEAR)
            return np.asarray(image, dtype="float32")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"Cannot read image {str(path)!r}: {error}") from None
