"""Helpers shared by the kerastl tests: data makers and round-trip checks.

Kept in one place so every module's tests check save/load, serialization and
exported-artifact agreement the same way.
"""

from __future__ import annotations

import math
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


def separable_images(n: int, num_classes: int, size: int = 32, *, seed: int = 0,
                     mislabeled: int = 0):
    """Returns (images, labels) whose class is visible in the mean color.

    Class ``c`` images are tinted toward a distinct color, so even a tiny
    random backbone plus a head can learn them in a few steps. The first
    `mislabeled` labels are then moved to the next class: validation data
    that no model gets all right, so `kerastl.fit` still runs the stages
    after the head (it skips those when the head misses fewer than two).
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % num_classes
    rng.shuffle(labels)
    base = rng.random((n, size, size, 3)) * 80.0
    palette = np.linspace(40, 170, num_classes)
    for c in range(num_classes):
        channel = c % 3
        base[labels == c, :, :, channel] += palette[c]
    labels[:mislabeled] = (labels[:mislabeled] + 1) % num_classes
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


def first_images_per_class(source: Path, target: Path, counts: dict) -> Path:
    """Copies the first ``counts[split]`` files (sorted by name) of every class folder.

    `source` is a class-per-folder dataset with one folder per split
    (``{"train": 40, "val": 40}`` copies ``source/train/<class>/`` and
    ``source/val/<class>/``); the copy has every class, so it is a smaller dataset of
    the same real photos.
    """
    import shutil

    source, target = Path(source), Path(target)
    for split, count in counts.items():
        folders = sorted(p for p in (source / split).iterdir() if p.is_dir())
        if not folders:
            raise FileNotFoundError(f"no class folders in {source / split}")
        for folder in folders:
            (target / split / folder.name).mkdir(parents=True)
            for image in sorted(folder.iterdir())[:count]:
                shutil.copy(image, target / split / folder.name / image.name)
    return target


# Tolerances of numeric comparisons, from float32 arithmetic (never from one CPU).
#
# Two float32 implementations of the same computation (another oneDNN kernel on
# an AVX-512/AMX CPU, XNNPACK in TFLite, a SavedModel graph, a cached path, a
# mirrored strategy) sum in another order. A K-term dot product computed by a
# blocked/pairwise kernel has a rounding error of about ceil(log2 K) units of
# float32 eps relative to the scale of its terms; through `depth` sequential
# layers (each about 1-Lipschitz once normalized) those relative errors add up.
# So two results may differ by
#     tol = FLOAT32_SAFETY * depth * ceil(log2 K) * eps      (relative)
# and, as cancellation makes small outputs carry the error of the large terms,
# by tol * scale in absolute terms, scale = the largest magnitude of the
# result. FLOAT32_SAFETY covers both implementations erring in opposite
# directions and activations near a kink (ReLU, max-pooling). A plausible bug
# (wrong preprocessing, a missing layer, the wrong weights) differs by O(scale).
FLOAT32_EPS = float(np.finfo(np.float32).eps)  # 2**-23, about 1.19e-7
FLOAT32_SAFETY = 4.0


# Depth and longest sum of the models the tests use.
# tiny_kerastl_model: preprocessing, 2 x (conv 3x3 up to 8 channels in, BN, ReLU),
# pooling, dense, softmax: 10 stages, 72-term sums.
TINY_MODEL = {"depth": 10, "terms": 72}
# MobileNetV2 + head: about 160 layers, the longest sum a dense over 1280 features.
MOBILENET_V2 = {"depth": 160, "terms": 1280}


def float32_tolerance(*, depth: int = 1, terms: int = 1) -> float:
    """Returns the relative tolerance of two float32 computations (see above).

    Args:
        depth: Sequential rounding stages: layers of a model; for training,
            steps x 3 (forward, backward, update) x layers.
        terms: Length of the longest sum in one stage (a convolution's
            kernel_h * kernel_w * in_channels, a dense layer's inputs).
    """
    return FLOAT32_SAFETY * max(1, depth) * max(1, math.ceil(math.log2(max(2, terms)))) * \
        FLOAT32_EPS


def assert_float32_close(actual, desired, *, depth: int = 1, terms: int = 1, scale=None,
                         err_msg: str = "") -> None:
    """Asserts ``|actual - desired| <= tol * (|desired| + scale)`` (relative + absolute).

    `tol` is `float32_tolerance(depth=depth, terms=terms)`; `scale` defaults to
    the largest magnitude in `desired`.
    """
    desired = np.asarray(desired, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if scale is None:
        scale = float(np.max(np.abs(desired))) if desired.size else 1.0
    tol = float32_tolerance(depth=depth, terms=terms)
    np.testing.assert_allclose(actual, desired, rtol=tol, atol=tol * max(float(scale), 1e-30),
                               err_msg=err_msg)


def assert_keras_round_trip(model, inputs, tmp_path, *, atol: float | None = None):
    """Saves `model` as .keras, reloads it in safe mode and compares predictions.

    ``atol=0`` asks for bit-identical predictions: the reloaded model runs the
    same kernels on the same weights in the same process. By default the
    predictions may differ by the float32 tolerance of the model's depth (the
    reloaded graph may be traced differently, e.g. without fit's extra nodes).
    """
    import keras

    path = Path(tmp_path) / "round_trip.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    expected = model.predict(inputs, verbose=0)
    got = loaded.predict(inputs, verbose=0)
    if atol is None:
        depth = len(list(model._flatten_layers(include_self=False, recursive=True)))
        assert_float32_close(got, expected, depth=depth, terms=4096)
    else:
        np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
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

    from kerastl.layers import task_loss

    model.compile(keras.optimizers.Adam(0.01), task_loss(task))
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


def assert_same_random_streams(run_a, run_b) -> None:
    """Checks two seeded runs, each ``(generator states when built, states after, weights)``.

    The runs' layers must have started from different random streams (else the
    check means nothing) and ended with equal streams and weights: a random draw
    is a function of the generator state, so every mask was the same.
    """
    (built_a, after_a, weights_a), (built_b, after_b, weights_b) = run_a, run_b
    assert built_a and not all(np.array_equal(a, b) for a, b in zip(built_a, built_b)), \
        "the runs must start from different random streams for this check to mean anything"
    for a, b in zip(after_a, after_b):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_array_equal(a, b)
