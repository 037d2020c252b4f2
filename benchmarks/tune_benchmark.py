"""Benchmark of `kerastl.tune` on flowers_kaggle_227 with the real MobileNetV2 weights.

Three searches over the same space (unfreeze depth in {0, 2, 4, "all"} x 3
learning rates around `kerastl.fit`'s default, recipe two_stage, the same
budget of `--epochs` fine-tuning epochs per setting):

* ``grid``: every setting, each a fresh `kerastl.build` + `kerastl.fit`
  (``recipe="two_stage"``: its default head stage on cached features, then
  the top blocks for `--epochs` epochs; depth 0: ``"feature_extraction"``).
  This is what a user's loop does: each `fit` caches features for itself only;
* ``kerastl.tune``: the default Hyperband with ``fine_tune_epochs=--epochs`` (one
  feature cache, shared head warm-ups, pruning), ``refit=False``;
* ``random``: plain `keras_tuner.RandomSearch` with a hand-written Keras
  HyperModel (`keras.applications.MobileNetV2`, ``ceil(epochs / 2)`` head
  epochs then `--epochs` fine-tuning epochs with `model.fit` at a tenth of the
  rate, as in the TensorFlow tutorial; no caching), stopped once it reaches
  kerastl.tune's accuracy.

Honest protocol: the searches see only the flowers ``train`` folder, split
80:20 into training and validation images; every choice (the best setting,
epochs, the head's strength) is made on validation. The dataset's ``val``
folder is the **test** split: nothing is chosen on it, and each search's
reported test accuracy is that of the setting it chose on validation.

It prints one JSON line per search and a table: the chosen setting's
validation and test accuracy, wall time, trials, epochs trained, and
RandomSearch's time to reach kerastl.tune's validation accuracy. Targets (issue 6): kerastl.tune within 1 point of
the grid's best in <= 0.25x the grid's wall time, and faster to that accuracy
than RandomSearch. The CPU may be shared: ``os.getloadavg()`` is recorded
before and after each search.

Usage::

    KERASTL_ASSETS=/path/to/assets python benchmarks/tune_benchmark.py [--epochs 4]

It needs ``$KERASTL_ASSETS``; when ``KERAS_HOME`` is unset, a temporary one is
seeded with ``$KERASTL_ASSETS/seed_keras_home.sh`` before Keras is imported,
so ``weights="imagenet"`` resolves offline.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from _common import seed_keras_home

DEPTHS = (0, 2, 4, "all")
LEARNING_RATES = (3e-4, 1e-3, 3e-3)
ALL = -1  # "all" as a keras-tuner Choice value


def _load(assets: Path, size: int, train_batches: int | None):
    """(train, validation, test, classes): train/validation from the train folder, test apart."""
    import kerastl

    root = assets / "datasets" / "flowers_kaggle_227"
    data = kerastl.data.from_directory(root / "train", image_size=size, batch_size=32,
                                       validation_split=0.2, seed=0)
    test = kerastl.data.from_directory(root / "val", image_size=size, batch_size=64,
                                       shuffle=False, class_names=data.class_names)
    train, val = data.train, data.validation
    if train_batches:
        train, val = train.take(train_batches), val.take(max(1, train_batches // 4))
    return train, val, test.train, data.num_classes


def test_accuracy(model, test) -> float:
    """Accuracy of `model` on the test split (labels: integer classes)."""
    import numpy as np

    hits = total = 0
    for images, labels in test:
        predicted = np.asarray(model.predict_on_batch(images)).argmax(axis=-1)
        hits += int((predicted == np.asarray(labels).reshape(-1)).sum())
        total += len(predicted)
    return hits / total


def _loadavg():
    return [round(v, 2) for v in os.getloadavg()]


def _head_epochs(budget: int) -> int:
    return math.ceil(budget / 2)


def run_grid(train, val, test, num_classes, args) -> dict:
    """Every (depth, learning rate): a new model and one `kerastl.fit`, budget epochs."""
    import keras

    import kerastl
    from kerastl.training import fit

    rows, start = [], time.perf_counter()
    for depth in DEPTHS:
        for lr in LEARNING_RATES:
            t0 = time.perf_counter()
            keras.backend.clear_session()
            keras.utils.set_random_seed(args.seed)
            model = kerastl.build("mobilenet_v2", num_classes, input_shape=args.image_size)
            extra = {} if depth == 0 else {"fine_tune_epochs": args.epochs,
                                           "trainable_blocks": depth}
            recipe = "two_stage" if extra else "feature_extraction"
            report = fit(model, train, val, recipe=recipe, learning_rate=lr, seed=args.seed,
                         verbose=0, **extra)
            rows.append({"trainable_blocks": depth, "learning_rate": lr,
                         "score": report.best["val_accuracy"],
                         "test_accuracy": test_accuracy(model, test),
                         "seconds": round(time.perf_counter() - t0, 2)})
            print(f"  grid {depth!s:>3} lr={lr:g}: {rows[-1]['score']:.4f} "
                  f"({rows[-1]['seconds']:.0f}s)", file=sys.stderr)
    return _summary("grid", rows, time.perf_counter() - start,
                    epochs=args.epochs * sum(r["trainable_blocks"] != 0 for r in rows))


def run_tune(train, val, test, num_classes, args, directory) -> dict:
    """`kerastl.tune` with its defaults (Hyperband) over the same discrete space."""
    from kerastl.tuning import SearchSpace, tune

    space = SearchSpace(trainable_blocks=list(DEPTHS), learning_rate=list(LEARNING_RATES),
                        backbone_learning_rate=None, dropout=None, recipe="two_stage")
    start = time.perf_counter()
    result = tune(train, val, backbone="mobilenet_v2", num_classes=num_classes,
                  search_space=space, fine_tune_epochs=args.epochs, seed=args.seed,
                  directory=directory, project_name="tune", overwrite=True,
                  verbose=0, refit=False)  # input_shape: taken from the data
    seconds = time.perf_counter() - start
    print(result.summary(), file=sys.stderr)
    rows = [dict(t["hyperparameters"], score=t["score"], seconds=t["seconds"],
                 epochs=t["epochs"], shared_head_warmup=t.get("shared_head_warmup"),
                 pruned=t.get("pruned"))
            for t in result.trials if t["status"] == "COMPLETED"]
    out = _summary("kerastl.tune", rows, seconds, epochs=sum(r["epochs"] or 0 for r in rows))
    out["test_accuracy"] = test_accuracy(result.best_model, test)  # the best trial's weights
    out["feature_cache"] = result.feature_cache
    return out


def _blocks_of(base):
    """Hand-written MobileNetV2 blocks: stem, block_1..block_16, top (by layer name)."""
    blocks, names = [], []
    for layer in base.layers:
        match = re.match(r"(block_\d+)_", layer.name)
        name = match.group(1) if match else ("stem" if not names else "top"
                                              if layer.name.startswith(("Conv_1", "out_relu"))
                                              else names[-1])
        if not names or names[-1] != name:
            names.append(name)
            blocks.append([])
        blocks[-1].append(layer)
    return blocks


def run_random(train, val, test, num_classes, args, directory, target) -> dict:
    """Plain keras_tuner.RandomSearch + a hand-written HyperModel (no caching)."""
    import keras
    import keras_tuner

    size = args.image_size
    log, start = [], [None]

    class PlainHyperModel(keras_tuner.HyperModel):
        def build(self, hp):
            hp.Choice("trainable_blocks", [0, 2, 4, ALL])
            hp.Choice("learning_rate", list(LEARNING_RATES))
            keras.utils.set_random_seed(args.seed)
            base = keras.applications.MobileNetV2(include_top=False, weights="imagenet",
                                                  input_shape=(size, size, 3))
            inputs = keras.Input((size, size, 3))
            x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
            x = base(x, training=False)
            x = keras.layers.GlobalAveragePooling2D()(x)
            x = keras.layers.Dropout(0.2)(x)
            outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
            return keras.Model(inputs, outputs)

        def fit(self, hp, model, *fit_args, callbacks=None, **kwargs):
            depth, lr = hp.get("trainable_blocks"), hp.get("learning_rate")
            base = [layer for layer in model.layers if isinstance(layer, keras.Model)][0]
            head = _head_epochs(args.epochs)
            base.trainable = False
            model.compile(keras.optimizers.Adam(lr), "sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            first = model.fit(train, validation_data=val, epochs=head, callbacks=callbacks,
                              verbose=0)
            scores = list(first.history["val_accuracy"])
            if depth:
                blocks = _blocks_of(base)
                keep = len(blocks) if depth == ALL else depth
                base.trainable = True
                for index, block in enumerate(blocks):
                    for layer in block:
                        layer.trainable = (index >= len(blocks) - keep and not isinstance(
                            layer, keras.layers.BatchNormalization))
                model.compile(keras.optimizers.Adam(lr * 0.1),
                              "sparse_categorical_crossentropy", metrics=["accuracy"])
                second = model.fit(train, validation_data=val, epochs=head + args.epochs,
                                   initial_epoch=head, callbacks=callbacks, verbose=0)
                scores += list(second.history["val_accuracy"])
            best = max(scores)
            elapsed = time.perf_counter() - start[0]
            log.append({"trainable_blocks": "all" if depth == ALL else depth,
                        "learning_rate": lr, "score": best, "elapsed": round(elapsed, 2),
                        # the last epoch's weights (the hand-written loop keeps no best epoch)
                        "test_accuracy": test_accuracy(model, test)})
            print(f"  random {log[-1]['trainable_blocks']!s:>3} lr={lr:g}: {best:.4f} "
                  f"(at {elapsed:.0f}s)", file=sys.stderr)
            return {"val_accuracy": best}

    class StoppingRandomSearch(keras_tuner.RandomSearch):
        def _configure_tensorboard_dir(self, callbacks, trial, execution=0):
            # keras-tuner 1.4.8 imports tensorboard here on the TF backend even
            # without a TensorBoard callback; tensorboard is not installed.
            return None

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            if args.stop_at_target and log and max(r["score"] for r in log) >= target:
                self.oracle.max_trials = len(self.oracle.trials)

    tuner = StoppingRandomSearch(PlainHyperModel(), objective="val_accuracy",
                                 max_trials=args.random_trials, seed=args.seed,
                                 directory=str(directory), project_name="random", overwrite=True)
    tuner.oracle.verbose = 0
    start[0] = time.perf_counter()
    tuner.search(train, validation_data=val)
    seconds = time.perf_counter() - start[0]
    out = _summary("random", log, seconds,
                   epochs=args.epochs * sum(r["trainable_blocks"] != 0 for r in log))
    reached = [r["elapsed"] for r in log if r["score"] >= target]
    out["time_to_target"] = reached[0] if reached else None
    return out


def _summary(method, rows, seconds, *, epochs) -> dict:
    best = max(rows, key=lambda r: r["score"]) if rows else None
    return {"method": method, "best_val_accuracy": None if best is None else best["score"],
            "test_accuracy": None if best is None else best.get("test_accuracy"),
            "best_setting": None if best is None else {
                k: best[k] for k in ("trainable_blocks", "learning_rate") if k in best},
            "seconds": round(seconds, 1), "trials": len(rows), "epochs_trained": epochs,
            "rows": rows}


def _table(results, tune_target) -> str:
    lines = [f"{'method':<14}{'best val acc':>13}{'its test acc':>13}{'seconds':>10}"
             f"{'trials':>8}{'epochs':>8}"
             f"{'t->tune acc':>13}  best setting"]
    for r in results:
        reach = r.get("time_to_target", r["seconds"] if r["method"] == "kerastl.tune" else None)
        acc, test = r["best_val_accuracy"], r.get("test_accuracy")
        lines.append(f"{r['method']:<14}{'-' if acc is None else f'{acc:.4f}':>13}"
                     f"{'-' if test is None else f'{test:.4f}':>13}"
                     f"{r['seconds']:>10.1f}{r['trials']:>8}{r['epochs_trained']:>8}"
                     f"{'-' if reach is None else f'{reach:.1f}':>13}  {r['best_setting']}")
    by = {r["method"]: r for r in results}
    if "grid" in by and "kerastl.tune" in by:
        g, t = by["grid"], by["kerastl.tune"]
        gap = 100 * (t["test_accuracy"] - g["test_accuracy"])
        ratio = t["seconds"] / g["seconds"]
        lines.append(f"kerastl.tune vs grid: {gap:+.1f} points vs the grid's best "
                     f"on test (target >= -1.0), {ratio:.2f}x its wall time (target <= 0.25)")
    if "random" in by and tune_target is not None:
        reach = by["random"].get("time_to_target")
        tuned = by.get("kerastl.tune")
        lines.append(f"RandomSearch reached {tune_target:.4f} "
                     + (f"after {reach:.1f}s" if reach is not None else
                        f"never in {by['random']['seconds']:.1f}s")
                     + (f" (kerastl.tune: {tuned['seconds']:.1f}s)" if tuned else ""))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", default=os.environ.get("KERASTL_ASSETS"))
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--epochs", type=int, default=4,
                        help="fine-tuning epochs of every setting (tune's fine_tune_epochs)")
    parser.add_argument("--random-trials", type=int, default=12)
    parser.add_argument("--no-stop-at-target", dest="stop_at_target", action="store_false")
    parser.add_argument("--methods", default="tune,grid,random")
    parser.add_argument("--train-batches", type=int, default=None,
                        help="use only this many training batches (smoke runs)")
    parser.add_argument("--target", type=float, default=None,
                        help="accuracy at which RandomSearch stops (default: kerastl.tune's "
                             "best of this run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="also write the JSON lines to this file")
    args = parser.parse_args(argv)
    if not args.assets:
        parser.error("set KERASTL_ASSETS or pass --assets")
    assets = Path(args.assets).resolve()
    seed_keras_home(assets)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    train, val, test, num_classes = _load(assets, args.image_size, args.train_batches)
    methods = [m.strip() for m in args.methods.split(",")]
    work = Path(tempfile.mkdtemp(prefix="kerastl_tune_bench_"))
    results, target = [], None
    for method in methods:
        before = _loadavg()
        if method == "tune":
            result = run_tune(train, val, test, num_classes, args, work)
            target = result["best_val_accuracy"]
        elif method == "grid":
            result = run_grid(train, val, test, num_classes, args)
        elif method == "random":
            target = args.target if args.target is not None else target
            result = run_random(train, val, test, num_classes, args, work,
                                target if target is not None else 1.0)
        else:
            parser.error(f"unknown method {method!r}")
        result.update(loadavg_before=before, loadavg_after=_loadavg(), epochs=args.epochs,
                      image_size=args.image_size, cpu_count=os.cpu_count())
        results.append(result)
        line = json.dumps(result)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a") as f:
                f.write(line + "\n")
    print(_table(results, target))
    return 0


if __name__ == "__main__":
    sys.exit(main())
