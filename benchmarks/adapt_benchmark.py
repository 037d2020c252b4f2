"""Unsupervised domain adaptation with `kerastl.adapt` on the two shift sets of the assets.

Protocol (per dataset, MobileNetV2 with ImageNet weights at --image-size, 224 by default):
  source   the clean train folder (labelled; --source-images in all, the same number per
           class, the first ones by file name, to fit the CPU budget) and its clean validation
           folder (--val-images): the only labelled data any method sees; it chooses
           the head's strength, the fine-tuning stage, and auto's 1-point rule.
  target   the shifted folder, split 50/50 by file name within each class (even positions
           of the sorted names: half A, odd: half B). Methods adapt on half A's pixels
           (no labels); the reported target accuracy is on half B (nothing was chosen on
           it), and, as the transductive figure of the literature, on half A.
  rows     source_only (kerastl.adapt.fit(method="source_only"): kerastl.fit's default
           recipe, head not refitted on the validation split), every method from the same
           source-trained weights, auto, the ceiling (kerastl.fit default on source + half A
           with its labels, scored on half B), and the ADAPT library's DANN and DeepCORAL
           (adapt 0.4.5, run in --adapt-python, a venv) on the same cached pooled features
           of the source-trained model (an MLP encoder of 256 units + a softmax layer).
Every row shares one FeatureCache per dataset: the backbone runs once per set of
images and backbone weights. "x fit" is (source fit + method) / source fit seconds.

Usage:
  KERASTL_ASSETS=../shared/assets python benchmarks/adapt_benchmark.py \
      --datasets flowers,cats --results benchmarks/results/adapt.jsonl \
      --adapt-python /tmp/adaptvenv/bin/python

Datasets already in --results are skipped, so the benchmark can be run in parts.
Prints one JSON line per row and a table at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import seed_keras_home

REPO = Path(__file__).resolve().parents[1]
DATASETS = {
    "flowers": ("flowers_kaggle_227/train", "flowers_kaggle_227/val",
                "flowers_kaggle_227_camera/val"),
    "cats": ("cats_and_dogs_filtered/train", "cats_and_dogs_filtered/validation",
             "cats_and_dogs_filtered_weather/validation"),
}
METHODS = ("adabn", "tent", "coral", "deep_coral", "mmd", "dann")


def _assets() -> Path:
    return Path(os.environ.get("KERASTL_ASSETS", REPO.parent / "shared" / "assets")).resolve()


def load_folder(folder: Path, size: int, per_class=None):
    """Images of a class-per-folder tree (kerastl's decoder), sorted by name per class."""
    import kerastl

    data = kerastl.data.from_directory(folder, image_size=size, shuffle=False, batch_size=64)
    paths = list(data.train.file_paths)
    xs, ys = [], []
    for x, y in data.train:
        xs.append(np.asarray(x).round().clip(0, 255).astype("uint8"))
        ys.append(np.asarray(y))
    x, y = np.concatenate(xs), np.concatenate(ys)
    keep = np.ones(len(y), bool)
    if per_class is not None:
        keep = np.zeros(len(y), bool)
        for c in np.unique(y):
            keep[np.flatnonzero(y == c)[:per_class]] = True
    names = [os.path.basename(p) for p in paths]
    return x[keep], y[keep], [n for n, k in zip(names, keep) if k], data.class_names


def _per_class(total, classes):
    return None if total is None else max(1, total // classes)


def halves(y, names):
    """Half A / half B of a target set: even / odd positions of each class's sorted names."""
    a, b = [], []
    for c in np.unique(y):
        members = sorted(np.flatnonzero(y == c), key=lambda i: names[i])
        a += members[0::2]
        b += members[1::2]
    return np.array(sorted(a)), np.array(sorted(b))


def score(model, target, labels, cache) -> float:
    from kerastl.adapt import features as feats

    x, _ = feats.cached(cache, model, target)
    predicted = feats.predicted_classes(feats.check_classifier(model),
                                        feats.predict_features(model, x))
    return float((predicted == labels).mean())


def _row(name, dataset, method, **values):
    row = {"benchmark": name, "dataset": dataset, "method": method, **values}
    print(json.dumps(row), flush=True)
    return row


def run_dataset(key: str, args) -> list:
    import kerastl
    import kerastl.adapt as adapt
    from kerastl.adapt import features as feats
    from kerastl.adapt.data import as_source, as_target
    from kerastl.training import FeatureCache

    root = _assets() / "datasets"
    src_dir, val_dir, tgt_dir = (root / p for p in DATASETS[key])
    size = args.image_size
    classes = len(os.listdir(src_dir))
    xs, ys, _, class_names = load_folder(src_dir, size, _per_class(args.source_images, classes))
    xv, yv, _, _ = load_folder(val_dir, size, _per_class(args.val_images, classes))
    xt, yt, names, _ = load_folder(tgt_dir, size, args.target_per_class)
    ia, ib = halves(yt, names)
    source, validation = (xs.astype("float32"), ys), (xv.astype("float32"), yv)
    model = kerastl.build("mobilenet_v2", num_classes=len(class_names), class_names=class_names,
                          input_shape=(size, size, 3), weights=args.weights)
    target_a = as_target(xt[ia].astype("float32"), input_shape=model.input_shape)
    target_b = as_target(xt[ib].astype("float32"), input_shape=model.input_shape)
    ya, yb = yt[ia], yt[ib]
    cache = FeatureCache()
    val = as_source("validation", validation, model=model)
    common = {"images": {"source": len(ys), "validation": len(yv), "target_a": len(ia),
                         "target_b": len(ib)}, "image_size": size}

    def scores(row_seconds):
        return {"target_b": score(model, target_b, yb, cache),
                "target_a": score(model, target_a, ya, cache),
                "source_val": feats.accuracy(model, val, cache), "seconds": row_seconds}

    rows = []
    report = adapt.fit(model, source, target_a, method="source_only",
                       source_validation=validation, feature_cache=cache, seed=0, verbose=0)
    fit_seconds = report.source_fit.seconds
    rows.append(_row("adapt", key, "source_only", **scores(fit_seconds), cost_vs_fit=1.0,
                     recipe_stage=report.source_fit.stages[report.source_fit.best_stage].name,
                     shift=report.shift.to_dict(), **common))
    base = model.get_weights()
    features = _features_for_adapt(model, cache, source, validation, target_a, target_b)
    features["yb"] = yb
    for method in args.methods:
        model.set_weights(base)
        report = adapt.fit(model, source, target_a, method=method, source_validation=validation,
                           train_source=False, feature_cache=cache, seed=0, verbose=0)
        seconds = report.candidates[0].seconds
        rows.append(_row("adapt", key, method, **scores(seconds),
                         cost_vs_fit=(fit_seconds + seconds) / fit_seconds, **common))
    model.set_weights(base)
    report = adapt.fit(model, source, target_a, method="auto", source_validation=validation,
                       train_source=False, feature_cache=cache, seed=0, verbose=0)
    seconds = report.seconds
    rows.append(_row("adapt", key, "auto", **scores(seconds), chosen=report.method,
                     message=report.message, cost_vs_fit=(fit_seconds + seconds) / fit_seconds,
                     tried=[c.method for c in report.candidates], **common))
    rows += _ceiling(key, args, xs, ys, xt[ia], ya, target_b, yb, validation, class_names,
                     common)
    if args.adapt_python:
        rows += _adapt_library(key, args, features, common)
    return rows


def _features_for_adapt(model, cache, source, validation, target_a, target_b) -> dict:
    from kerastl.adapt import features as feats
    from kerastl.adapt.data import as_source

    xs, ys = feats.cached(cache, model, as_source("s", source, model=model))
    xv, yv = feats.cached(cache, model, as_source("v", validation, model=model))
    xa, _ = feats.cached(cache, model, target_a)
    xb, _ = feats.cached(cache, model, target_b)
    return {"xs": xs, "ys": ys, "xv": xv, "yv": yv, "xa": xa, "xb": xb}


def _ceiling(key, args, xs, ys, xa, ya, target_b, yb, validation, class_names, common):
    import kerastl
    from kerastl.adapt import features as feats
    from kerastl.adapt.data import as_source
    from kerastl.training import FeatureCache

    size = args.image_size
    model = kerastl.build("mobilenet_v2", num_classes=len(class_names), class_names=class_names,
                          input_shape=(size, size, 3), weights=args.weights)
    cache = FeatureCache()
    train = (np.concatenate([xs, xa]).astype("float32"), np.concatenate([ys, ya]))
    start = time.perf_counter()
    report = kerastl.fit(model, train, validation, feature_cache=cache, seed=0, verbose=0)
    seconds = time.perf_counter() - start
    val = as_source("validation", validation, model=model)
    return [_row("adapt", key, "ceiling", target_b=score(model, target_b, yb, cache),
                 target_a=None, source_val=report.best.get("val_accuracy"),
                 source_val_after_refit=feats.accuracy(model, val, cache), seconds=seconds,
                 **common)]


def _adapt_library(key, args, features, common) -> list:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.npz"
        np.savez(path, **features)
        out = Path(tmp) / "out.json"
        proc = subprocess.run([args.adapt_python, __file__, "--adapt-worker", str(path),
                               str(out)], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if proc.returncode != 0:
            return [_row("adapt", key, "ADAPT", error=proc.stderr[-2000:], **common)]
        results = json.loads(out.read_text())
    return [_row("adapt", key, f"ADAPT_{name}", **values, **common)
            for name, values in results.items()]


def adapt_worker(npz: str, out: str) -> None:
    """Runs the ADAPT library's DANN and DeepCORAL on cached features (in ADAPT's venv)."""
    import keras
    from adapt.feature_based import DANN, DeepCORAL

    f = np.load(npz)
    k = int(max(f["ys"].max(), f["yv"].max())) + 1
    ys = np.eye(k, dtype="float32")[f["ys"].astype(int)]
    d = f["xs"].shape[1]
    results = {}
    for name, cls in (("DANN", DANN), ("DeepCORAL", DeepCORAL)):
        keras.utils.set_random_seed(0)
        encoder = keras.Sequential([keras.Input((d,)), keras.layers.Dense(256, activation="relu")])
        task = keras.Sequential([keras.Input((256,)), keras.layers.Dense(k, activation="softmax")])
        start = time.perf_counter()
        model = cls(encoder=encoder, task=task, Xt=f["xa"], lambda_=1.0, random_state=0,
                    loss="categorical_crossentropy", optimizer=keras.optimizers.Adam(1e-3))
        model.fit(f["xs"], ys, epochs=30, batch_size=32, verbose=0)
        seconds = time.perf_counter() - start

        def acc(x, y):
            return float((np.asarray(model.predict(x, verbose=0)).argmax(1) == y).mean())

        results[name] = {"target_b": acc(f["xb"], f["yb"]) if "yb" in f else None,
                         "seconds": seconds, "source_val": acc(f["xv"], f["yv"])}
    json.dump(results, open(out, "w"))


def _recovered(row, base, top) -> str:
    """Share of the source-only -> ceiling gap on half B; "n/a" when the gap is < 2 points."""
    if not (base and top) or row.get("target_b") is None:
        return "-"
    gap = top["target_b"] - base["target_b"]
    if gap < 0.02:
        return f"n/a (gap {gap * 100:+.0f} pt)"
    return f"{(row['target_b'] - base['target_b']) / gap:.0%}"


def _table(rows) -> str:
    lines = ["| dataset | method | target B | target A | source val | seconds | x fit | "
             "gap recovered |", "|---|---|---|---|---|---|---|---|"]
    for key in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == key]
        base = next((r for r in mine if r["method"] == "source_only"), None)
        top = next((r for r in mine if r["method"] == "ceiling"), None)
        for r in mine:
            if "error" in r:
                lines.append(f"| {key} | {r['method']} | error: see JSON | | | | | |")
                continue
            gap = _recovered(r, base, top)
            cells = [f"{r[c]:.3f}" if isinstance(r.get(c), float) else "-"
                     for c in ("target_b", "target_a", "source_val")]
            name = r["method"] + (f" -> {r['chosen']}" if r.get("chosen") else "")
            cost = f"{r['cost_vs_fit']:.2f}" if r.get("cost_vs_fit") else "-"
            lines.append(f"| {key} | {name} | {' | '.join(cells)} | {r.get('seconds', 0):.0f} | "
                         f"{cost} | {gap} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="flowers,cats")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--source-images", type=int, default=None,
                        help="Source training images, the same number per class (default: all).")
    parser.add_argument("--val-images", type=int, default=None,
                        help="Source validation images, the same number per class (default: all).")
    parser.add_argument("--target-per-class", type=int, default=None,
                        help="Only for a quick check of the script (default: every image).")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--weights", default="imagenet")
    parser.add_argument("--results", default=None)
    parser.add_argument("--adapt-python", default=None)
    parser.add_argument("--adapt-worker", nargs=2, default=None)
    args = parser.parse_args()
    if args.adapt_worker:
        adapt_worker(*args.adapt_worker)
        return
    args.methods = [m for m in args.methods.split(",") if m]
    if args.weights == "none":
        args.weights = None
    seed_keras_home(_assets())
    done = []
    if args.results and Path(args.results).is_file():
        done = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line]
    rows = list(done)
    for key in args.datasets.split(","):
        if any(r["dataset"] == key for r in done):
            continue
        new = run_dataset(key, args)
        rows += new
        if args.results:
            Path(args.results).parent.mkdir(parents=True, exist_ok=True)
            with open(args.results, "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in new)
    print(_table(rows))


if __name__ == "__main__":
    sys.exit(main())
