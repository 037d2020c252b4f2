"""Benchmark of `kerastl.export` on the real MobileNetV2 fine-tuned on flowers_kaggle_227.

Builds ``kerastl.build("mobilenet_v2", 5, input_shape=(224, 224, 3))`` with
the real ImageNet weights, fine-tunes it with `kerastl.fit` (default recipe)
on the train folder split 80:20 into training and validation images (every
choice of `fit` is made on those), exports every format and quantization
with the dataset's separate val folder as `eval_data` (a **test** split:
nothing was chosen on it; the calibration images come from the training
images), and prints one JSON line per artifact plus a table against the
targets of the export issue:

* int8 ``.tflite`` <= 0.27x the float32 size; float16 <= 0.52x.
* int8 accuracy within 1.0 point of the Keras model, agreement >= 97%;
  dynamic and float16 within 0.5 point.
* int8 latency <= 0.6x float32's (CPU, XNNPACK).

Usage::

    KERASTL_ASSETS=/path/to/assets python benchmarks/export_benchmark.py [--recipe auto]

It needs ``$KERASTL_ASSETS`` (weights and datasets); when ``KERAS_HOME`` is
unset, a temporary one is seeded with ``$KERASTL_ASSETS/seed_keras_home.sh``
before Keras is imported, so ``weights="imagenet"`` resolves offline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from _common import seed_keras_home

TARGETS = {  # artifact -> (max size ratio, max accuracy drop in points, min agreement)
    "model_int8.tflite": (0.27, 1.0, 0.97),
    "model_float16.tflite": (0.52, 0.5, None),
    "model_dynamic.tflite": (None, 0.5, None),
}
INT8_MAX_LATENCY_RATIO = 0.6


def _load_split(folder: Path, size: int, *, shuffle: bool):
    import keras
    import numpy as np

    ds = keras.utils.image_dataset_from_directory(
        folder, image_size=(size, size), batch_size=32, shuffle=shuffle, seed=0,
        label_mode="int", verbose=False)
    images, labels = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(images), np.concatenate(labels), ds.class_names


def _validation_rows(labels, *, seed: int, fraction: float = 0.2):
    """Boolean mask of a stratified `fraction` of every class (the validation images)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    held = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        held[members[: max(1, round(len(members) * fraction))]] = True
    return held


def _check(report) -> list[dict]:
    """One row per artifact with the measured values and whether each target is met."""
    keras_acc = report.keras["accuracy"]
    f32 = next(a for a in report.artifacts if a.name == "model_float32.tflite")
    rows = []
    for a in report.artifacts:
        row = {"artifact": a.name, "size_bytes": a.size_bytes, "size_ratio": a.size_ratio,
               "accuracy": a.accuracy, "accuracy_delta_points": 100 * (a.accuracy - keras_acc),
               "agreement": a.agreement, "latency_ms": a.latency_ms,
               "latency_ratio": a.latency_ms / f32.latency_ms}
        max_ratio, max_drop, min_agree = TARGETS.get(a.name, (None, None, None))
        checks = {}
        if max_ratio is not None:
            checks[f"size_ratio<={max_ratio}"] = a.size_ratio <= max_ratio
        if max_drop is not None:
            checks[f"|acc_delta|<={max_drop}pt"] = abs(row["accuracy_delta_points"]) <= max_drop
        if min_agree is not None:
            checks[f"agreement>={min_agree}"] = a.agreement >= min_agree
        if a.name == "model_int8.tflite":
            checks[f"latency_ratio<={INT8_MAX_LATENCY_RATIO}"] = (
                row["latency_ratio"] <= INT8_MAX_LATENCY_RATIO)
        row["targets"] = checks
        rows.append(row)
    return rows


def _table(rows, keras_metrics) -> str:
    head = (f"{'artifact':<22}{'bytes':>12}{'ratio':>8}{'acc':>8}{'d(pt)':>7}{'agree':>8}"
            f"{'ms/img':>8}{'lat x':>7}  targets")
    lines = [head, "-" * len(head),
             f"{'keras (reference)':<22}{'':>12}{'':>8}{keras_metrics['accuracy']:>8.4f}"
             f"{'':>7}{'':>8}{keras_metrics['latency_ms']:>8.2f}"]
    for r in rows:
        verdict = ", ".join(f"{k} {'ok' if v else 'MISSED'}" for k, v in r["targets"].items())
        lines.append(f"{r['artifact']:<22}{r['size_bytes']:>12,}{r['size_ratio']:>8.3f}"
                     f"{r['accuracy']:>8.4f}{r['accuracy_delta_points']:>+7.1f}"
                     f"{r['agreement']:>8.4f}{r['latency_ms']:>8.2f}{r['latency_ratio']:>7.2f}"
                     f"  {verdict}")
    return "\n".join(lines)


def _cpu() -> dict:
    """The CPU model and its int8 dot-product extensions (int8 speed-ups depend on them)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {}
    flags = set()
    name = ""
    for line in text.splitlines():
        if line.startswith("model name") and not name:
            name = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            flags |= set(line.split(":", 1)[1].split())
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return {"cpu": name, "cpu_flags": [f for f in wanted if f in flags],
            "cpu_count": os.cpu_count()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--assets", default=os.environ.get("KERASTL_ASSETS"))
    parser.add_argument("--recipe", default="auto", help="kerastl.fit recipe")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--calibration", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="export directory (default: temp)")
    args = parser.parse_args(argv)
    if not args.assets:
        parser.error("set KERASTL_ASSETS or pass --assets")
    assets = Path(args.assets)
    seed_keras_home(assets)

    import kerastl  # after KERAS_HOME is set
    import kerastl.export  # noqa: F401 (until kerastl/__init__.py re-exports it)

    import keras

    keras.utils.set_random_seed(args.seed)
    start = time.perf_counter()
    data = assets / "datasets" / "flowers_kaggle_227"
    images, labels, names = _load_split(data / "train", args.image_size, shuffle=True)
    held = _validation_rows(labels, seed=args.seed)
    train_x, train_y = images[~held], labels[~held]
    val_x, val_y = images[held], labels[held]
    test_x, test_y, _ = _load_split(data / "val", args.image_size, shuffle=False)
    model = kerastl.build("mobilenet_v2", len(names),
                          input_shape=(args.image_size, args.image_size, 3),
                          weights="imagenet", class_names=names)
    kerastl.fit(model, (train_x, train_y), (val_x, val_y), recipe=args.recipe,
                seed=args.seed, verbose=0)
    trained = time.perf_counter()
    out = Path(args.output or tempfile.mkdtemp(prefix="kerastl_export_bench_"))
    report = kerastl.export(model, out, representative_data=train_x,
                            num_calibration_samples=args.calibration,
                            eval_data=(test_x, test_y), verbose=0)
    exported = time.perf_counter()
    rows = _check(report)
    for row in rows:
        print(json.dumps({"benchmark": "export", **row}))
    print(json.dumps({"benchmark": "export", "artifact": "keras", **report.keras,
                      "train_s": trained - start, "export_s": exported - trained,
                      "num_eval_images": report.num_check_images, "runtime": report.runtime,
                      "path": report.path, **_cpu()}))
    print(_table(rows, report.keras))
    return 0


if __name__ == "__main__":
    sys.exit(main())
