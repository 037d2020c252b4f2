"""Helpers shared by the kerastl tests: data makers and round-trip checks.

Kept in one place so every module's tests check save/load, serialization and
exported-artifact agreement the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def random_images(n: int, size: int = 32, *, seed: int = 0) -> np.ndarray:
    """Returns `n` float32 RGB images in [0, 255] of shape (size, size, 3)."""
    rng = np.random.default_rng(seed)
    return (rng.random((n, size, size, 3)) * 255.0).astype("float32")


def separable_images(n: int, num_classes: int, size: int = 32, *, seed: int = 0):
    """Returns (images, labels) whose class is visible in the mean color.

    Class ``c`` images are tinted toward a distinct color, so even a tiny
    random backbone plus a head can learn them in a few steps.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    base = rng.random((n, size, size, 3)) * 80.0
    palette = np.linspace(40, 170, num_classes)
    for c in range(num_classes):
        channel = c % 3
        base[labels == c, :, :, channel] += palette[c]
    return np.clip(base, 0, 255).astype("float32"), labels.astype("int64")


def make_image_folder(root: Path, *, classes=("a", "b"), per_class: int = 6, size: int = 40,
                      seed: int = 0, fmt: str = "JPEG") -> Path:
    """Writes a class-per-folder image dataset with class-tinted images."""
    from PIL import Image

    images, labels = separable_images(per_class * len(classes), len(classes), size, seed=seed)
    counters = {c: 0 for c in classes}
    ext = {"JPEG": "jpg", "PNG": "png", "BMP": "bmp"}[fmt]
    for img, label in zip(images, labels):
        name = classes[int(label)]
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img.astype("uint8")).save(folder / f"{name}_{counters[name]}.{ext}", fmt)
        counters[name] += 1
    return Path(root)


def assert_keras_round_trip(model, inputs, tmp_path, *, atol: float = 1e-6):
    """Saves `model` as .keras, reloads it in safe mode and compares predictions."""
    import keras

    path = Path(tmp_path) / "round_trip.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = model.predict(inputs, verbose=0)
    got = loaded.predict(inputs, verbose=0)
    np.testing.assert_allclose(got, expected, atol=atol)
    return loaded


def assert_serialization_round_trip(layer):
    """Checks ``from_config(get_config())`` reproduces the layer's config."""
    import keras

    config = keras.saving.serialize_keras_object(layer)
    clone = keras.saving.deserialize_keras_object(config)
    assert clone.get_config() == layer.get_config()
    return clone


def run_python(code: str, *, env: dict | None = None, timeout: float = 300,
               cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh Python process and returns the completed process."""
    full_env = dict(os.environ)
    full_env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if env:
        full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=cwd or REPO)


def tiny_kerastl_model(num_classes: int = 3, *, size: int = 32, task: str = "multiclass",
                       class_names=None, seed: int = 0):
    """Builds a tiny model with kerastl's layout, by hand (no registry needed).

    ``Input "image" -> ImagePreprocessing("tf") "preprocessing" -> nested
    functional "backbone" (2 x Conv2D + BatchNormalization + ReLU) ->
    ClassificationHead "head"``.
    """
    import keras

    from kerastl.layers import ClassificationHead, ImagePreprocessing

    keras.utils.set_random_seed(seed)
    backbone_in = keras.Input((size, size, 3))
    x = backbone_in
    for filters in (8, 16):
        x = keras.layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    backbone = keras.Model(backbone_in, x, name="backbone")
    image = keras.Input((size, size, 3), name="image")
    x = ImagePreprocessing("tf", backbone="tiny", name="preprocessing")(image)
    outputs = ClassificationHead(1 if task == "binary" else num_classes, task=task,
                                 class_names=class_names, dropout=0.0, name="head")(backbone(x))
    return keras.Model(image, outputs, name="tiny")


def train_tiny_model(model, images, labels, *, epochs: int = 8, task: str = "multiclass"):
    """Trains `model` a few epochs on (images, labels) so its predictions are non-trivial."""
    import keras

    loss = {"multiclass": "sparse_categorical_crossentropy", "binary": "binary_crossentropy",
            "multilabel": "binary_crossentropy", "regression": "mse"}[task]
    model.compile(keras.optimizers.Adam(0.01), loss)
    model.fit(images, labels, epochs=epochs, batch_size=16, verbose=0)
    return model


def train_head_on_features(model, images, labels, *, epochs: int = 10, batch_size: int = 32):
    """Trains only the head of a kerastl model with a frozen backbone, on cached features.

    The frozen backbone runs once over `images`; the head (shared with
    `model`) is then fit on its pooled outputs, which is seconds instead of
    minutes for a real backbone on CPU.
    """
    import keras

    backbone = model.get_layer("backbone")
    head = model.get_layer("head")
    preprocess = model.get_layer("preprocessing")
    feats = []
    for start in range(0, len(images), batch_size):
        x = preprocess(images[start:start + batch_size])
        feats.append(keras.ops.convert_to_numpy(head.pool(backbone(x, training=False))))
    feats = np.concatenate(feats)
    inputs = keras.Input(feats.shape[1:])
    head_model = keras.Model(inputs, head(inputs))
    head_model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy",
                       metrics=["accuracy"])
    head_model.fit(feats, labels, epochs=epochs, batch_size=batch_size, verbose=0)
    return model


def calibrate_batch_norm(model, images) -> None:
    """Sets the BatchNormalization statistics of a randomly initialized backbone from `images`.

    A random-init backbone with frozen (inference-mode) BatchNormalization
    layers shrinks activations layer after layer (MobileNetV2 at 32x32 gives
    pooled features near 1e-12), so nothing can be learned on top of it. One
    training-mode pass with momentum 0 sets every moving mean and variance to
    the statistics of `images`, which makes the frozen features informative.
    """
    import keras

    backbone = model.get_layer("backbone")
    preprocess = model.get_layer("preprocessing")
    layers = [layer for layer in backbone._flatten_layers()
              if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [(layer.trainable, layer.momentum) for layer in layers]
    for layer in layers:
        layer.trainable, layer.momentum = True, 0.0
    backbone(preprocess(images), training=True)
    for layer, (trainable, momentum) in zip(layers, saved):
        layer.trainable, layer.momentum = trainable, momentum
