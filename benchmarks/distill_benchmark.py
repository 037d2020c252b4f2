"""Distillation benchmark: a MobileNetV2 teacher into MobileNet alpha=0.25 students.

Protocol (honest): each dataset's training folder is split 80:20 per class
into training and validation images (seeded); everything is chosen on those
(the teacher's stages and epochs, the students' epochs and stages); the
reported accuracy is on the dataset's own held-out folder (``val/`` or
``validation/``), which nothing was chosen on.

* teacher: ``kerastl.build("mobilenet_v2", input_shape=224)`` + ``kerastl.fit`` defaults;
* (a) the student trained directly: ``kerastl.fit`` defaults;
* (b) ``kerastl.distillation.distill`` defaults with every label;
* (c) the same with half the training labels dropped (stratified; those
  images passed as ``unlabeled=``).

Each student is exported as int8 ``.tflite`` (`kerastl.distillation.compare`):
test accuracy of the Keras model and the int8 file, the file's size, its
single-image latency through LiteRT on this CPU; and the wall time of each
training call. (b) and (c) share the teacher's outputs (one `TeacherCache`),
so (b)'s wall time includes them and (c)'s does not; both are printed.

Run: ``KERASTL_ASSETS=../shared/assets python benchmarks/distill_benchmark.py
--datasets flowers_kaggle_227 --sizes 128`` (``--smoke``: 10 images per class,
a 96 px teacher and one epoch per stage, to check the script).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import seed_keras_home  # noqa: E402
from recipe_sweep import DATASETS, _assets, load_folder, split  # noqa: E402


def _half_labels(labels: np.ndarray, seed: int):
    """Stratified halves of the indices: (kept labelled, dropped to unlabelled)."""
    rng = np.random.default_rng(seed)
    keep, drop = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        keep.append(members[: len(members) // 2])
        drop.append(members[len(members) // 2:])
    return np.concatenate(keep), np.concatenate(drop)


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def run_dataset(name, sizes, args, out_dir):
    import kerastl
    from kerastl.distillation import TeacherCache, compare, distill
    from kerastl.distillation.compare import resized
    # Not kerastl.fit: importing kerastl.training.fit (as distillation does) makes
    # kerastl.training.fit the module in kerastl 9f9ab81 (see the issue 17 report).
    from kerastl.training.fit import fit

    train_folder, test_folder = DATASETS[name]
    root = _assets() / "datasets" / name
    teacher_size = 96 if args.smoke else 224
    x, y, classes = load_folder(root / train_folder, teacher_size)
    test_x, test_y, _ = load_folder(root / test_folder, teacher_size)
    if args.smoke:
        pick = np.concatenate([np.flatnonzero(y == c)[:10] for c in np.unique(y)])
        x, y = x[pick], y[pick]
        test_x, test_y = test_x[:40], test_y[:40]
    tr, va = split(y, "all", args.seed)
    k = len(classes)
    teacher = kerastl.build("mobilenet_v2", k, input_shape=teacher_size, class_names=classes)
    report, seconds = _timed(lambda: fit(
        teacher, (x[tr], y[tr]), (x[va], y[va]), seed=args.seed, verbose=0,
        **({"fine_tune_epochs": 1} if args.smoke else {})))
    teacher_acc = float(teacher.evaluate(test_x, test_y, verbose=0, batch_size=32)[1])
    records = [{"dataset": name, "model": "teacher", "size": teacher_size,
                "test_accuracy": teacher_acc, "params": int(teacher.count_params()),
                "seconds": seconds, "val_accuracy": report.best.get("val_accuracy")}]
    print(json.dumps(records[-1]), flush=True)
    cache = TeacherCache()
    keep, drop = _half_labels(y[tr], args.seed)
    for size in sizes:
        def student():
            return kerastl.build("mobilenet", k, input_shape=size, class_names=classes,
                                 backbone_kwargs={"alpha": 0.25})

        xs = resized(x, (size, size))
        models, secs, extra = {}, {}, {}
        models["a_fit"] = student()
        fit_report, secs["a_fit"] = _timed(lambda: fit(
            models["a_fit"], (xs[tr], y[tr]), (xs[va], y[va]), seed=args.seed, verbose=0,
            **({"fine_tune_epochs": 1} if args.smoke else {})))
        extra["a_fit"] = {"val_accuracy": fit_report.best.get("val_accuracy")}
        kwargs = {"views": args.views, "seed": args.seed, "verbose": 0, "teacher_cache": cache}
        if args.smoke:
            kwargs.update(epochs=1, fine_tune_epochs=1)
        for label, train, unlabeled in (
                ("b_distill", (x[tr], y[tr]), None),
                ("c_distill_half", (x[tr][keep], y[tr][keep]), x[tr][drop])):
            models[label] = student()
            dr, secs[label] = _timed(lambda: distill(teacher, models[label], train,
                                                     (x[va], y[va]), unlabeled=unlabeled,
                                                     **kwargs))
            extra[label] = {"val_accuracy": dr.best.get("val_accuracy"),
                            "teacher_seconds": dr.teacher_seconds,
                            "labelled": dr.num_labeled, "unlabelled": dr.num_unlabeled}
        rows = compare(models, (test_x, test_y), directory=out_dir / f"{name}_{size}",
                       representative_data=(x[tr], y[tr]),
                       num_calibration_samples=100 if not args.smoke else 20)
        for row in rows:
            records.append({"dataset": name, "model": row.name, "size": size,
                            "test_accuracy": row.accuracy, "int8_accuracy": row.int8_accuracy,
                            "int8_mb": row.int8_bytes / 1e6, "latency_ms": row.latency_ms,
                            "params": row.parameters, "seconds": secs[row.name],
                            "wall_vs_fit": secs[row.name] / secs["a_fit"], **extra[row.name]})
            print(json.dumps(records[-1]), flush=True)
    return records


def _table(records) -> str:
    lines = ["| dataset | model | px | test acc | int8 acc | int8 MB | latency ms | params | "
             "seconds | x fit |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        def pct(key):
            return "-" if r.get(key) is None else f"{100 * r[key]:.1f}"

        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['size']} | {pct('test_accuracy')} | "
            f"{pct('int8_accuracy')} | "
            + ("-" if "int8_mb" not in r else f"{r['int8_mb']:.3f}") + " | "
            + ("-" if r.get("latency_ms") is None else f"{r['latency_ms']:.2f}") + " | "
            f"{r['params'] / 1e6:.2f} M | {r['seconds']:.0f} | "
            + ("-" if "wall_vs_fit" not in r else f"{r['wall_vs_fit']:.1f}") + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="flowers_kaggle_227",
                        help="Comma list of " + ", ".join(DATASETS))
    parser.add_argument("--sizes", default="128", help="Student sizes, e.g. 128,160")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    seed_keras_home(_assets())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sizes = [128] if args.smoke else [int(s) for s in args.sizes.split(",")]
    records = []
    with tempfile.TemporaryDirectory(prefix="kerastl_distill_bench_") as tmp:
        for name in args.datasets.split(","):
            records += run_dataset(name, sizes, args, Path(tmp))
    print(_table(records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
