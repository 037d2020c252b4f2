"""Benchmark of `kerastl.fit` against the TensorFlow transfer-learning tutorial recipe.

Runs each (dataset, run) pair in a fresh Python process (clean memory, fair
timing, its own peak RSS) and prints one JSON line per run, then a table.

Protocol: every method trains on 80% of the dataset's train folder and makes
its choices (kerastl: head strength, best epoch, kept stage) on the other 20%
(the same stratified split, seed 0); the reported accuracy is on the
dataset's validation folder, used as a test split nothing was chosen on.

Runs:
  baseline    the TF tutorial recipe in plain Keras: image_dataset_from_directory,
              RandomFlip + RandomRotation(0.2), MobileNetV2 preprocess_input,
              frozen MobileNetV2, GAP, Dropout(0.2), Dense; 10 epochs at Adam(1e-4),
              then layers[100:] unfrozen and 10 epochs at RMSprop(1e-5) (the
              tutorial's optimizers). The tutorial calls base_model(x, training=False);
              in a Keras 3 functional model the outer training flag overrides that,
              so BatchNormalization layers are set trainable=False (inference
              mode) to reproduce it faithfully.
  auto        kerastl.data.from_directory + kerastl.build + kerastl.fit defaults.
  two_stage   kerastl.fit(recipe="two_stage", epochs=10, fine_tune_epochs=10,
              early_stopping=False): the baseline's epoch budget.
  auto224     `auto` at 224x224 (to compare with MediaPipe Model Maker at 224).

Usage:
  python benchmarks/fit_benchmark.py --datasets flowers_kaggle_227,cats_and_dogs_filtered \
      --runs baseline,auto,two_stage,auto224 --image-size 160

Assets come from $KERASTL_ASSETS (default ../shared/assets next to the repo);
KERAS_HOME is seeded from it before Keras is imported when unset.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from _common import seed_keras_home, tutorial_model, tutorial_unfreeze

REPO = Path(__file__).resolve().parents[1]
DATASETS = {"cats_and_dogs_filtered": ("train", "validation"),
            "flowers_kaggle_227": ("train", "val")}
RUNS = ("baseline", "auto", "two_stage", "auto224")
SEED = 0


def _assets() -> Path:
    return Path(os.environ.get("KERASTL_ASSETS", REPO.parent / "shared" / "assets")).resolve()


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_baseline(dataset: str, size: int) -> dict:
    """The TF transfer-learning tutorial recipe, in plain Keras 3."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(SEED)
    start = time.perf_counter()
    root = _assets() / "datasets" / dataset
    train_dir, val_dir = (root / d for d in DATASETS[dataset])
    train, val = keras.utils.image_dataset_from_directory(
        train_dir, shuffle=True, batch_size=32, image_size=(size, size), seed=SEED,
        validation_split=0.2, subset="both")
    test = keras.utils.image_dataset_from_directory(val_dir, shuffle=False, batch_size=32,
                                                    image_size=(size, size))
    num_classes = len(train.class_names)
    n_train = sum(int(tf.shape(y)[0]) for _, y in train)
    train, val = train.prefetch(tf.data.AUTOTUNE), val.prefetch(tf.data.AUTOTUNE)
    model, base = tutorial_model(size, num_classes)
    setup = time.perf_counter() - start
    t0 = time.perf_counter()
    frozen = model.fit(train, validation_data=val, epochs=10, verbose=0)
    frozen_seconds = time.perf_counter() - t0
    tutorial_unfreeze(model, base)
    t0 = time.perf_counter()
    tuned = model.fit(train, validation_data=val, epochs=20, initial_epoch=10, verbose=0)
    tune_seconds = time.perf_counter() - t0
    total = time.perf_counter() - start
    test_accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    return {"test_accuracy": test_accuracy, "val_accuracy": tuned.history["val_accuracy"][-1],
            "best_val_accuracy": max(frozen.history["val_accuracy"]
                                     + tuned.history["val_accuracy"]),
            "first_stage_val_accuracy": frozen.history["val_accuracy"][-1],
            "stage_seconds": {"setup": setup, "frozen": frozen_seconds,
                              "fine_tune": tune_seconds},
            "epochs": 20, "n_train": n_train, "total_seconds": total,
            "images_per_second": n_train * 20 / total}


def run_kerastl(dataset: str, size: int, recipe_kwargs: dict) -> dict:
    """kerastl: from_directory + build + fit."""
    import kerastl

    start = time.perf_counter()
    root = _assets() / "datasets" / dataset
    train_dir, test_dir = (root / d for d in DATASETS[dataset])
    data = kerastl.data.from_directory(train_dir, image_size=size, batch_size=32, seed=SEED,
                                       validation_split=0.2)
    test = kerastl.data.from_directory(test_dir, image_size=size, batch_size=32,
                                       shuffle=False).train
    model = kerastl.build("mobilenet_v2", data.num_classes, input_shape=size,
                          class_names=data.class_names)
    setup = time.perf_counter() - start
    report = kerastl.fit(model, data, seed=SEED, verbose=0, **recipe_kwargs)
    total = time.perf_counter() - start
    test_accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    seen = sum(report.num_examples * s.epochs_run for s in report.stages)
    stages = {"setup": setup}
    stages.update({s.name: s.seconds for s in report.stages})
    return {"test_accuracy": test_accuracy, "val_accuracy": report.best["val_accuracy"],
            "first_stage_val_accuracy": report.stages[0].best.get("val_accuracy"),
            "recipe": report.recipe, "stage_seconds": stages,
            "cache_seconds": sum(s.cache_seconds for s in report.stages),
            "epochs": sum(s.epochs_run for s in report.stages),
            "n_train": report.num_examples, "total_seconds": total,
            "images_per_second": seen / total}


def single(run: str, dataset: str, size: int) -> dict:
    """Runs one (run, dataset) pair in this process and returns its JSON record."""
    seed_keras_home(_assets())
    load_before = os.getloadavg()
    if run == "baseline":
        result = run_baseline(dataset, size)
    elif run == "two_stage":
        result = run_kerastl(dataset, size, {"recipe": "two_stage", "epochs": 10,
                                             "fine_tune_epochs": 10, "early_stopping": False})
    else:
        result = run_kerastl(dataset, 224 if run == "auto224" else size, {})
    result.update({"run": run, "dataset": dataset, "image_size": 224 if run == "auto224" else size,
                   "peak_rss_mib": _peak_rss_mib(), "loadavg_before": load_before,
                   "loadavg_after": os.getloadavg(), "cpus": os.cpu_count()})
    return result


def _wait_quiet(max_load: float, max_wait: float) -> None:
    waited = 0.0
    while os.getloadavg()[0] > max_load and waited < max_wait:
        time.sleep(15)
        waited += 15


def _table(records: list[dict]) -> str:
    head = ("dataset", "run", "px", "test acc", "val acc", "stage 1 val acc", "stage seconds",
            "total s",
            "img/s", "peak RSS MiB", "load 1m")
    rows = [head]
    for r in records:
        stages = "+".join(f"{v:.0f}" for k, v in r["stage_seconds"].items() if k != "setup")
        first = r.get("first_stage_val_accuracy")
        rows.append((r["dataset"], r["run"] + (f" ({r['recipe']})" if "recipe" in r else ""),
                     str(r["image_size"]), f"{r['test_accuracy']:.3f}",
                     f"{r['val_accuracy']:.3f}",
                     "-" if first is None else f"{first:.3f}", stages,
                     f"{r['total_seconds']:.0f}", f"{r['images_per_second']:.0f}",
                     f"{r['peak_rss_mib']:.0f}", f"{r['loadavg_before'][0]:.2f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--max-load", type=float, default=1.5,
                        help="wait (up to --max-wait s) until the 1-min load is below this")
    parser.add_argument("--max-wait", type=float, default=600)
    parser.add_argument("--single", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.single:
        run, dataset = args.single.split(":")
        print("RESULT " + json.dumps(single(run, dataset, args.image_size)), flush=True)
        return 0
    records = []
    for dataset in args.datasets.split(","):
        if dataset not in DATASETS:
            parser.error(f"unknown dataset {dataset!r}; choose from {', '.join(DATASETS)}")
        for run in args.runs.split(","):
            if run not in RUNS:
                parser.error(f"unknown run {run!r}; choose from {', '.join(RUNS)}")
            _wait_quiet(args.max_load, args.max_wait)
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
            proc = subprocess.run([sys.executable, __file__, "--single", f"{run}:{dataset}",
                                   "--image-size", str(args.image_size)],
                                  capture_output=True, text=True, env=env)
            lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
            if proc.returncode or not lines:
                print(f"{run} on {dataset} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                continue
            record = json.loads(lines[-1][len("RESULT "):])
            records.append(record)
            print(json.dumps(record), flush=True)
    print(_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
