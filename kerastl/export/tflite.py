"""TFLite conversion (float32, dynamic, float16, int8) and inference.

Conversion goes through `tf.lite.TFLiteConverter.from_saved_model` on a
SavedModel traced from the Keras model (the path TensorFlow documents for
Keras 3). Quantizations:

* ``"float32"``: no optimization.
* ``"dynamic"``: int8 weights, float activations (``Optimize.DEFAULT``).
* ``"float16"``: float16 weights (``supported_types=[tf.float16]``).
* ``"int8"``: full-integer; activations calibrated on representative images,
  ``TFLITE_BUILTINS_INT8`` only, uint8 input and output. The uint8 input is
  the raw pixel value: its quantization is pinned to scale 1, zero point 0
  (the first calibration image gets one pixel at 0 and one at 255 so the
  calibrated input range is exactly [0, 255]), and this is checked after
  conversion. Ops the converter could not quantize (it silently keeps them
  in float) are found in the converted graph and reported as an error.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from kerastl._validation import check_int, check_one_of
from kerastl.export.config import QUANTIZATIONS

_QUANTIZE_OPS = ("QUANTIZE", "DEQUANTIZE")


class QuantizationError(ValueError):
    """Raised when a model cannot be fully quantized to int8."""


def interpreter_class():
    """Returns the LiteRT `Interpreter` class (`tf.lite.Interpreter` if LiteRT is missing)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - ai-edge-litert is a dependency
        return tf.lite.Interpreter
    return Interpreter


def runtime_name() -> str:
    """Returns the module of the interpreter used to run `.tflite` files."""
    return interpreter_class().__module__.split(".")[0]


def read_model(path) -> bytes:
    """Returns the bytes of a `.tflite` file, refusing files that cannot be one.

    Raises:
        FileNotFoundError: `path` does not exist (or is a folder).
        ValueError: The file is empty, truncated or not a TFLite flatbuffer.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be the path of a .tflite file. Received: path={path!r:.200}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`path` must be an existing .tflite file; "
                                f"{'it is a folder' if os.path.isdir(path) else 'no such file'}."
                                f" Received: path={os.fspath(path)!r}")
    with open(path, "rb") as f:
        data = f.read()
    problem = None
    if not data:
        problem = "the file is empty (0 bytes)"
    elif len(data) < 8 or data[4:8] != b"TFL3":
        problem = f"the file ({len(data)} bytes) does not start like a TFLite flatbuffer"
    if problem:
        raise ValueError(f"`path` must be a TFLite model file; {problem}. "
                         f"Received: path={os.fspath(path)!r}")
    return data


def make_interpreter(path_or_bytes, *, num_threads: int | None = None):
    """Creates an interpreter for a `.tflite` file or serialized model.

    Raises:
        FileNotFoundError: A path that does not exist.
        ValueError: An empty, truncated or corrupt model.
    """
    cls = interpreter_class()
    name = "the serialized model"
    if not isinstance(path_or_bytes, (bytes, bytearray)):
        name = repr(os.fspath(path_or_bytes))
        path_or_bytes = read_model(path_or_bytes)
    try:
        interpreter = cls(model_content=bytes(path_or_bytes), num_threads=num_threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"`path` must be a complete TFLite model; {name} is truncated or "
                         f"corrupt ({str(err).splitlines()[0][:200]}). Received: path={name}"
                         ) from err
    return interpreter


def _calibration(images: np.ndarray):
    """Returns a representative-dataset generator pinning the input range to [0, 255]."""
    def generate():
        for i, image in enumerate(images):
            image = np.array(image[None], dtype="float32")
            if i == 0:
                image[0, 0, 0, :] = 0.0
                image[0, 0, -1, :] = 255.0
            yield [image]
    return generate


def convert(saved_model_dir, quantization: str, *, calibration_images=None) -> bytes:
    """Converts a SavedModel (see `write_conversion_saved_model`) to TFLite.

    Args:
        saved_model_dir: Directory of the SavedModel.
        quantization: One of `QUANTIZATIONS`.
        calibration_images: float32 (N, H, W, 3) images in [0, 255]; needed for "int8".

    Returns:
        The serialized TFLite model.

    Raises:
        QuantizationError: If int8 conversion leaves float ops in the graph or
            the uint8 input is not the raw pixel value.

    Example:
        >>> data = kerastl.export.tflite.convert("conv_sm", "float16")
    """
    check_one_of("quantization", quantization, QUANTIZATIONS)
    if quantization == "int8" and calibration_images is None:
        raise ValueError("int8 conversion needs calibration images.")
    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        converter.representative_dataset = _calibration(calibration_images)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    try:
        data = converter.convert()
    except Exception as err:  # the converter raises several internal error types
        if quantization != "int8":
            raise
        raise QuantizationError(
            f"int8 conversion failed; the model has ops TFLite cannot quantize to int8. "
            f"Export it with quantization=('float32', 'dynamic', 'float16') instead. "
            f"Converter error: {err}") from err
    if quantization == "int8":
        check_full_integer(data)
    return data


def _float_ops(interpreter) -> list[str]:
    names = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    floats = (np.float32, np.float16, np.float64)
    found = []
    for op in interpreter._get_ops_details():  # noqa: SLF001 (no public op listing)
        types = list(op.get("operand_types", [])) + list(op.get("result_types", []))
        if op["op_name"] not in _QUANTIZE_OPS and any(t in floats for t in types):
            tensor = names.get(int(op["outputs"][0]), "?") if len(op["outputs"]) else "?"
            found.append(f"{op['op_name']} ({tensor})")
    return found


def check_full_integer(data: bytes) -> None:
    """Raises `QuantizationError` unless `data` is a full-integer uint8-IO model.

    Checks that no op computes in float and that the uint8 input means raw
    pixels (scale 1, zero point 0).

    Args:
        data: A serialized TFLite model.
    """
    interpreter = make_interpreter(data)
    float_ops = _float_ops(interpreter)
    if float_ops:
        raise QuantizationError(
            "int8 conversion kept these ops in float because TFLite cannot quantize them: "
            f"{', '.join(float_ops)}. kerastl refuses a partly-float 'int8' model; replace "
            "these ops in the model, or export with quantization=('float32', 'dynamic', "
            "'float16').")
    detail = interpreter.get_input_details()[0]
    scale, zero_point = detail["quantization"]
    if detail["dtype"] != np.uint8 or abs(scale - 1.0) > 1e-6 or zero_point != 0:
        raise QuantizationError(
            "The int8 model's uint8 input does not take raw pixels: expected scale 1 and "
            f"zero point 0, got scale {scale} and zero point {zero_point}.")


def _run(interpreter, batch: np.ndarray) -> np.ndarray:
    detail = interpreter.get_input_details()[0]
    if tuple(detail["shape"]) != batch.shape:
        interpreter.resize_tensor_input(detail["index"], list(batch.shape))
        interpreter.allocate_tensors()
    _run_input_only(interpreter, batch)
    interpreter.invoke()
    out = interpreter.get_output_details()[0]
    values = interpreter.get_tensor(out["index"])
    if np.issubdtype(out["dtype"], np.integer):
        scale, zero_point = out["quantization"]
        values = (values.astype("float32") - zero_point) * scale
    return values.astype("float32")


def predict_tflite(path, images, *, batch_size: int = 32, num_threads: int | None = None):
    """Runs a `.tflite` model on images and returns float outputs.

    Images are quantized for a uint8/int8 input (for kerastl int8 models the
    uint8 input is the raw pixel value) and uint8/int8 outputs are
    dequantized, so the result has the layout and scale of ``model.predict``
    (probabilities for classification models).

    Args:
        path: A `.tflite` file.
        images: Array (N, H, W, 3) of RGB pixels in [0, 255], float or uint8.
        batch_size: Images per interpreter call.
        num_threads: CPU threads of the interpreter (None: runtime default).

    Returns:
        float32 array (N, num_outputs).

    Example:
        >>> probs = kerastl.predict_tflite("saved_models/1/model_int8.tflite", images)
        >>> probs.argmax(axis=-1)
    """
    batch_size = check_int("batch_size", batch_size, minimum=1)
    interpreter = make_interpreter(path, num_threads=num_threads)
    expected = tuple(int(d) for d in interpreter.get_input_details()[0]["shape"][1:])
    images = check_images(images, expected)
    parts = [_run(interpreter, images[i:i + batch_size])
             for i in range(0, len(images), batch_size)]
    return np.concatenate(parts)


def check_images(images, expected: tuple) -> np.ndarray:
    """Returns `images` as a float32 batch of shape ``(N, *expected)``, or raises ValueError.

    A single image of shape `expected` becomes a batch of one. Empty batches,
    grayscale or RGBA images, other sizes and non-finite (NaN, inf) pixels
    are refused with the shape or values received: the model would return
    garbage (NaN probabilities) for them.

    Example:
        >>> kerastl.export.tflite.check_images(np.zeros((32, 32, 3)), (32, 32, 3)).shape
        (1, 32, 32, 3)
    """
    shape = "(N, " + ", ".join(map(str, expected)) + ")"
    try:
        array = np.asarray(images, dtype="float32")
    except (TypeError, ValueError) as err:
        raise ValueError(f"`images` must be an array of shape {shape} of RGB pixels in "
                         f"[0, 255]. Received: images of type {type(images).__name__}") from err
    original = array.shape
    if array.ndim == len(expected) and tuple(array.shape) == tuple(expected):
        array = array[None]
    if array.ndim == 4 and len(array) == 0:
        raise ValueError(f"`images` must hold at least one image of shape {shape}. "
                         f"Received: images of shape {original}")
    if array.ndim != 4 or tuple(array.shape[1:]) != tuple(expected):
        hint = ""
        if array.ndim == 3 or (array.ndim == 4 and array.shape[-1] in (1, 4)
                               and tuple(array.shape[1:3]) == tuple(expected[:2])):
            hint = (" Grayscale or RGBA images must be converted to RGB first (e.g. "
                    "np.repeat(gray[..., None], 3, axis=-1), or rgba[..., :3]).")
        raise ValueError(f"`images` must have shape {shape} for this model (RGB pixels in "
                         f"[0, 255]).{hint} Received: images of shape {original}")
    if not np.isfinite(array).all():
        bad = int(np.count_nonzero(~np.isfinite(array).reshape(len(array), -1).all(axis=1)))
        raise ValueError(f"`images` must hold finite pixel values in [0, 255]; {bad} image(s) "
                         f"contain NaN or infinite values. Received: images with "
                         f"non-finite values")
    return array


def latency_ms(interpreter, images: np.ndarray, *, warmup: int = 2) -> float:
    """Mean milliseconds of one single-image `invoke` over `images` (after warm-up).

    Args:
        interpreter: An interpreter of the model.
        images: float32 (N, H, W, 3) images; each is run as a batch of one.
        warmup: Untimed runs first.

    Returns:
        The mean time of `invoke` alone (input conversion not counted).
    """
    import time

    for image in images[:warmup]:
        _run(interpreter, image[None])
    total = 0.0
    for image in images:
        _run_input_only(interpreter, image[None])
        start = time.perf_counter()
        interpreter.invoke()
        total += time.perf_counter() - start
    return 1000.0 * total / max(len(images), 1)


def _run_input_only(interpreter, batch: np.ndarray) -> None:
    detail = interpreter.get_input_details()[0]
    if np.issubdtype(detail["dtype"], np.integer):
        scale, zero_point = detail["quantization"]
        info = np.iinfo(detail["dtype"])
        batch = np.clip(np.round(batch / scale + zero_point), info.min, info.max)
    interpreter.set_tensor(detail["index"], batch.astype(detail["dtype"]))


__all__ = ["QUANTIZATIONS", "QuantizationError", "convert", "predict_tflite",
           "check_full_integer", "make_interpreter", "latency_ms"]
