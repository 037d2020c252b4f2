"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<name>.py``)."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np


def seed_keras_home(assets: Path) -> None:
    """Points ``KERAS_HOME`` at a temporary folder seeded from the assets, when it is unset.

    ``$KERASTL_ASSETS/seed_keras_home.sh`` links the real ImageNet weights under
    every name Keras asks for, so ``weights="imagenet"`` resolves offline
    through Keras's normal download path. Call it before importing Keras. The folder
    is removed when the process exits.
    """
    if os.environ.get("KERAS_HOME"):
        return
    home = tempfile.mkdtemp(prefix="kerastl_bench_keras_home_")
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    subprocess.run(["bash", str(Path(assets) / "seed_keras_home.sh"), home], check=True,
                   capture_output=True)
    os.environ["KERAS_HOME"] = home


def tutorial_model(size: int, num_classes: int):
    """The TensorFlow transfer-learning tutorial's model, compiled for its first stage.

    RandomFlip + RandomRotation(0.2), MobileNetV2 ``preprocess_input``, the
    frozen ImageNet MobileNetV2, global average pooling, Dropout(0.2) and a
    Dense layer of logits (one unit for two classes), at Adam(1e-4).

    Returns:
        ``(model, base)``: the model and its MobileNetV2 (for `tutorial_unfreeze`).
    """
    import keras

    augment = keras.Sequential([keras.layers.RandomFlip("horizontal"),
                                keras.layers.RandomRotation(0.2)])
    base = keras.applications.MobileNetV2(input_shape=(size, size, 3), include_top=False,
                                          weights="imagenet")
    base.trainable = False
    inputs = keras.Input((size, size, 3))
    x = base(keras.applications.mobilenet_v2.preprocess_input(augment(inputs)), training=False)
    x = keras.layers.Dropout(0.2)(keras.layers.GlobalAveragePooling2D()(x))
    binary = num_classes == 2
    model = keras.Model(inputs, keras.layers.Dense(1 if binary else num_classes)(x))
    loss, metrics = _tutorial_loss(binary)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=loss, metrics=metrics)
    return model, base


def _tutorial_loss(binary: bool):
    import keras

    if binary:
        return (keras.losses.BinaryCrossentropy(from_logits=True),
                [keras.metrics.BinaryAccuracy(threshold=0.0, name="accuracy")])
    return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            [keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def tutorial_unfreeze(model, base) -> None:
    """The tutorial's second stage: ``base.layers[100:]`` trainable, RMSprop(1e-5).

    The tutorial calls ``base(x, training=False)``; in a Keras 3 functional
    model the outer training flag overrides that, so BatchNormalization layers
    are set ``trainable=False`` (inference mode), which is what it means.
    """
    import keras

    base.trainable = True
    for layer in base.layers[:100]:
        layer.trainable = False
    for layer in base.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
    binary = model.outputs[0].shape[-1] == 1
    loss, metrics = _tutorial_loss(binary)
    model.compile(optimizer=keras.optimizers.RMSprop(1e-5), loss=loss, metrics=metrics)


def markdown_table(rows) -> str:
    """A Markdown table of string rows (the first row is the header), columns padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def mean_std(values, digits: int = 3) -> str:
    """``"mean ± std"`` (sample std, ddof=1) of a cell; the value alone for one run."""
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def append_record(path, record: dict) -> None:
    """Prints `record` as one JSON line and appends it to the results file `path`."""
    print(json.dumps(record), flush=True)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def read_records(path) -> list[dict]:
    """The JSON lines of a results file (an empty list when it does not exist yet)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
