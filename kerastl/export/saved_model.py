"""SavedModel export for serving (TF Serving, `tf.saved_model.load`).

The SavedModel is written with `keras.export.ExportArchive`, which traces the
model (kerastl's custom layers included) to plain TensorFlow functions: it
loads with `tf.saved_model.load` in a process that has neither kerastl nor
Keras imported. Signatures:

* ``serving_default``: ``image`` float32 ``[batch, H, W, 3]``, RGB in [0, 255]
  (raw pixels, no preprocessing: the model does its own).
* ``serving_uint8``: ``image`` uint8 ``[batch, H, W, 3]``, the same pixels.
* ``serving_bytes``: ``image_bytes`` string ``[batch]`` of encoded JPEG, PNG,
  GIF or BMP images of any size; each is decoded to RGB and resized to H x W
  (bilinear, no aspect-ratio crop).

Each returns ``{"probabilities": float32 [batch, K], "class_index": int64
[batch]}`` for classification (for ``"binary"``, K = 2: ``[1 - p, p]``, so
the columns line up with ``labels.txt``) and ``{"predictions": float32
[batch, K]}`` for ``"regression"``.
"""

from __future__ import annotations

import shutil

import keras
import numpy as np
import tensorflow as tf

SIGNATURES = ("serving_default", "serving_uint8", "serving_bytes")


def _outputs(raw, task: str) -> dict:
    raw = tf.cast(raw, tf.float32)
    if task == "regression":
        return {"predictions": raw}
    if task == "binary":
        probabilities = tf.concat([1.0 - raw, raw], axis=-1)
    else:
        probabilities = raw
    return {"probabilities": probabilities,
            "class_index": tf.argmax(probabilities, axis=-1, output_type=tf.int64)}


def _decode(height: int, width: int):
    def decode_one(data):
        image = tf.io.decode_image(data, channels=3, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width), method="bilinear")
        return tf.ensure_shape(image, (height, width, 3))
    return decode_one


def write_serving_saved_model(model, path, *, task: str) -> dict:
    """Writes the serving SavedModel of `model` to `path`.

    Args:
        model: A kerastl model (input RGB in [0, 255] of a fixed size).
        path: Directory to create.
        task: The model's task (decides the output keys).

    Returns:
        A JSON-friendly description of the signatures (inputs and outputs).

    Example:
        >>> kerastl.export.saved_model.write_serving_saved_model(model, "sm", task="multiclass")
    """
    height, width, channels = model.input_shape[1:]
    decode_one = _decode(height, width)
    image_shape = (None, height, width, channels)
    # One trace of the model, shared by the three signatures.
    forward = tf.function(lambda image: model(image, training=False),
                          input_signature=[tf.TensorSpec(image_shape, tf.float32)])

    def predict_float(image):
        return _outputs(forward(image), task)

    def predict_uint8(image):
        return predict_float(tf.cast(image, tf.float32))

    def predict_bytes(image_bytes):
        images = tf.map_fn(decode_one, image_bytes,
                           fn_output_signature=tf.TensorSpec((height, width, 3), tf.float32))
        return predict_float(images)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", predict_float,
                         input_signature=[tf.TensorSpec(image_shape, tf.float32, name="image")])
    archive.add_endpoint("serving_uint8", predict_uint8,
                         input_signature=[tf.TensorSpec(image_shape, tf.uint8, name="image")])
    archive.add_endpoint("serving_bytes", predict_bytes,
                         input_signature=[tf.TensorSpec((None,), tf.string, name="image_bytes")])
    archive.write_out(str(path), verbose=False)
    outputs = (["predictions"] if task == "regression" else ["probabilities", "class_index"])
    shape = [None, height, width, channels]
    return {
        "serving_default": {"inputs": {"image": {"dtype": "float32", "shape": shape,
                                                 "range": [0, 255]}}, "outputs": outputs},
        "serving_uint8": {"inputs": {"image": {"dtype": "uint8", "shape": shape}},
                          "outputs": outputs},
        "serving_bytes": {"inputs": {"image_bytes": {"dtype": "string", "shape": [None]}},
                          "outputs": outputs, "resize": "bilinear"},
    }


def write_conversion_saved_model(model, path) -> None:
    """Writes a SavedModel with one signature returning the raw model output.

    It is the input of `tf.lite.TFLiteConverter.from_saved_model` (the
    conversion path TensorFlow documents for Keras 3 models). It holds only
    what the converter reads: the ``serving_default`` function (traced as
    `keras.export.ExportArchive` traces an endpoint) and the variables that
    function reads, not the Keras model's object graph, so it is written and
    loaded (once per quantization) faster; the converted `.tflite` files are
    the same bytes. A model whose function uses other TensorFlow resources
    (e.g. lookup tables) is written with `keras.export.ExportArchive`.

    Args:
        model: The Keras model.
        path: Directory to create.

    Example:
        >>> kerastl.export.saved_model.write_conversion_saved_model(model, "conv_sm")
        >>> data = kerastl.export.tflite.convert("conv_sm", "float32")
    """
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="image")
    forward = tf.function(lambda image: model(image, training=False), input_signature=[spec],
                          autograph=False)
    concrete = forward.get_concrete_function()
    module = tf.Module()
    module.model_variables = list(concrete.variables)  # saved, then frozen by the converter
    module.serving_default = forward
    try:
        tf.saved_model.save(module, str(path), signatures={"serving_default": concrete})
        return
    except (AssertionError, ValueError):  # e.g. a lookup table the module does not track
        shutil.rmtree(path, ignore_errors=True)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serving_default", lambda image: model(image, training=False),
                         input_signature=[spec])
    archive.write_out(str(path), verbose=False)


def predict_saved_model(loaded, images, *, task: str, batch_size: int = 32):
    """Runs ``serving_default`` of a loaded SavedModel on float images.

    Args:
        loaded: The object returned by `tf.saved_model.load`.
        images: float array (N, H, W, 3) in [0, 255].
        task: The model's task.
        batch_size: Images per call.

    Returns:
        Numpy array of the outputs in the layout of ``model.predict``
        (for ``"binary"``, the probability of class 1, shape (N, 1)).
    """
    fn = loaded.signatures["serving_default"]
    parts = []
    for start in range(0, len(images), batch_size):
        out = fn(image=tf.constant(images[start:start + batch_size], tf.float32))
        key = "predictions" if task == "regression" else "probabilities"
        values = out[key].numpy()
        parts.append(values[:, 1:] if task == "binary" else values)
    return np.concatenate(parts)
