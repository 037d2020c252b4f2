"""Trains kerastl models under a strategy and writes their weights to ``--out``.

Run by tests/distribute/test_strategies.py in fresh processes, because logical
CPU devices and `MultiWorkerMirroredStrategy` must be set up before TensorFlow
initializes its runtime.

Models (both from `kerastl.build`, no dropout, plain SGD, no shuffling):
    tiny: a small conv backbone with a training BatchNormalization layer whose
        statistics are synchronized (`kerastl.distribute.synchronize_batch_norm`);
        every weight gets a real gradient (`kerastl.build(bn_training=True)`
        synchronizes them under several replicas). ``tiny_nosync`` (same initial
        weights) switches the synchronization off after the build, so its BN
        statistics are per replica and its training differs from one device.
    mobilenet_v2: ``kerastl.build("mobilenet_v2", ...)`` with alpha 0.35, random
        weights and the default frozen backbone (only the head trains; random
        MobileNetV2 features are tiny, so mostly the head's bias moves).

Modes:
    mirrored: splits the CPU into two logical devices and uses
        ``kerastl.distribute.get_strategy("mirrored")``; each model is trained
        on it and, from the same initial weights, on the default strategy.
    multi_worker: ``kerastl.distribute.get_strategy("multi_worker")`` from
        ``TF_CONFIG``; trains ``tiny``; worker 0 also trains the single-device
        reference.

Files: ``<model>_<run>.npz`` (final weights), ``<model>_<run>_initial.npz`` and
``info.json`` / ``info_worker<i>.json`` (replicas, strategy, shard policy, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for harness

GLOBAL_BATCH = 8
NUM_EXAMPLES = 24
NUM_CLASSES = 3
EPOCHS = 2


def make_model(name: str, strategy):
    import keras

    import kerastl

    if name == "mobilenet_v2":
        return kerastl.build("mobilenet_v2", NUM_CLASSES, input_shape=(32, 32, 3), weights=None,
                             backbone_kwargs={"alpha": 0.35}, head={"dropout": 0.0},
                             strategy=strategy)
    with kerastl.distribute.scope(strategy):
        inputs = keras.Input((32, 32, 3))
        x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False)(inputs)
        x = keras.layers.BatchNormalization()(x)
        backbone = keras.Model(inputs, keras.layers.ReLU()(x), name="tiny")
    model = kerastl.build(backbone, NUM_CLASSES, backbone_kwargs={"preprocessing": "tf"},
                          head={"dropout": 0.0}, trainable_blocks="all", bn_training=True,
                          strategy=strategy)
    # build(bn_training=True) under a multi-replica strategy synchronizes BN itself.
    bns = [l for l in model.get_layer("backbone").layers
           if type(l).__name__ == "BatchNormalization"]
    several = kerastl.distribute.num_replicas(strategy) > 1
    if not (bns and all(l.synchronized == several for l in bns)):
        raise RuntimeError(f"BatchNormalization synchronized={[l.synchronized for l in bns]} "
                           f"under {kerastl.distribute.describe(strategy)}")
    if name == "tiny_nosync":
        for layer in bns:
            layer.synchronized = False
    return model


def train(name: str, strategy, images, labels, initial=None):
    """Fits a fresh model; returns (initial weights, final weights, facts about the run)."""
    import keras
    import tensorflow as tf

    import kerastl

    keras.utils.set_random_seed(0)
    model = make_model(name, strategy)
    if initial is not None:
        model.set_weights(initial)
    start = model.get_weights()
    with kerastl.distribute.scope(strategy):
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"],
                      **kerastl.distribute.compile_options(strategy))
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(GLOBAL_BATCH)
    dataset = kerastl.distribute.prepare_dataset(dataset, strategy, training=True)
    validation = None
    if name != "mobilenet_v2":  # (its tracing is the slow part: train steps only)
        validation = tf.data.Dataset.from_tensor_slices((images[:8], labels[:8]))
        validation = kerastl.distribute.prepare_dataset(validation.batch(GLOBAL_BATCH), strategy,
                                                        training=False)
    history = model.fit(dataset, validation_data=validation, epochs=EPOCHS, shuffle=False,
                        verbose=0)
    facts = {"strategy": kerastl.distribute.describe(strategy),
             "replicas": kerastl.distribute.num_replicas(strategy),
             "model_strategy_is_strategy": model.distribute_strategy is (
                 strategy or tf.distribute.get_strategy()),
             "shard_policy": dataset.options().experimental_distribute.auto_shard_policy.name,
             "history": {k: [float(v) for v in vs] for k, vs in history.history.items()}}
    return start, model.get_weights(), facts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("mirrored", "multi_worker"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    import kerastl.distribute
    from harness import separable_images

    if args.mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        strategy = kerastl.distribute.get_strategy("mirrored")
        runs = [("tiny", "mirrored"), ("tiny_nosync", "mirrored"), ("mobilenet_v2", "mirrored")]
        info_name, reference = "info.json", True
    else:
        strategy = kerastl.distribute.get_strategy("multi_worker")
        index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
        runs = [("tiny", f"worker{index}")]
        info_name, reference = f"info_worker{index}.json", index == 0

    images, labels = separable_images(NUM_EXAMPLES, NUM_CLASSES, seed=1)
    info, starts = {}, {}
    for name, run in runs:
        initial = starts.get("tiny") if name == "tiny_nosync" else None
        start, weights, info[f"{name}_{run}"] = train(name, strategy, images, labels, initial)
        starts[name] = start
        np.savez(args.out / f"{name}_{run}.npz", *weights)
        np.savez(args.out / f"{name}_{run}_initial.npz", *start)
        if reference and name != "tiny_nosync":
            _, single, info[f"{name}_single"] = train(name, None, images, labels, initial=start)
            np.savez(args.out / f"{name}_single.npz", *single)
    (args.out / info_name).write_text(json.dumps(info, indent=1))
    print(f"done {args.mode}", flush=True)


if __name__ == "__main__":
    main()
