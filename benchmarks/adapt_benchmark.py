"""Unsupervised domain adaptation with `kerastl.adapt` on the two shift sets of the assets.

Protocol (per dataset and seed, MobileNetV2 with ImageNet weights at --image-size, 224):
  source   the clean train folder (labelled), split 80:20 per class by the seed
           (recipe_sweep.split): the training images and the source validation images,
           the only labelled data any method sees (it chooses the head's strength, the
           fine-tuning stage and auto's 1-point rule). --source-images keeps fewer.
  clean    the clean val/validation folder: source test accuracy, nothing chosen on it.
  target   the shifted folder, split 50/50 by file name within each class (even positions
           of the sorted names: half A, odd: half B). Two folds: adapt on A's pixels (no
           labels) and score B, then adapt on B and score A. "target (held-out half)" is
           the mean of the two held-out scores (every target image is scored once, by a
           model that never saw its pixels); "adapted-on half" is the transductive figure
           of the literature.
  rows     source_only (kerastl.adapt.fit(method="source_only"): kerastl.fit's default
           recipe, head not refitted on the validation split), every method from the same
           source-trained weights, auto, the ceiling (kerastl.fit default on source + one
           half with its labels, scored on the other half), and the ADAPT library's DANN
           and DeepCORAL (adapt 0.4.5, run in --adapt-python, a venv) on the same cached
           pooled features of the source-trained model (an MLP encoder of 256 units + a
           softmax layer).
Every row shares one FeatureCache per dataset: the backbone runs once per set of
images and backbone weights. "x fit" is (source fit + method) / source fit seconds, the
method's seconds averaged over the two folds.

Usage:
  KERASTL_ASSETS=../shared/assets python benchmarks/adapt_benchmark.py \
      --datasets flowers,cats --seeds 0,1,2 --results benchmarks/results/adapt_v2.jsonl \
      --adapt-python /tmp/adaptvenv/bin/python

(dataset, seed) pairs already in --results are skipped, so the benchmark runs in parts.
Prints one JSON line per row and a table at the end.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import seed_keras_home
from recipe_sweep import split

REPO = Path(__file__).resolve().parents[1]
DATASETS = {
    "flowers": ("flowers_kaggle_227/train", "flowers_kaggle_227/val",
                "flowers_kaggle_227_camera/val"),
    "cats": ("cats_and_dogs_filtered/train", "cats_and_dogs_filtered/validation",
             "cats_and_dogs_filtered_weather/validation"),
}
METHODS = ("coral", "coral_coloured", "adabn", "tent", "deep_coral", "mmd", "dann")
# Rows that call a method function with an option instead of kerastl.adapt.fit.
METHOD_CALLS = {"coral_coloured": ("coral", {"head_data": "coloured"}),
                "coral_w0.5": ("coral", {"coloured_weight": 0.5}),
                "coral_w0.25": ("coral", {"coloured_weight": 0.25}),
                "dann_confusion": ("dann", {"adversary": "confusion"})}


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


def run_dataset(key: str, args, seed: int) -> list:
    import kerastl
    import kerastl.adapt as adapt
    from kerastl.adapt import features as feats
    from kerastl.adapt.data import as_source, as_target
    from kerastl.training import FeatureCache

    root = _assets() / "datasets"
    src_dir, test_dir, tgt_dir = (root / p for p in DATASETS[key])
    size = args.image_size
    classes = len(os.listdir(src_dir))
    x, y, _, class_names = load_folder(src_dir, size, _per_class(args.source_images, classes))
    tr, va = split(y, "all", seed)
    xc, yc, _, _ = load_folder(test_dir, size)
    xt, yt, names, _ = load_folder(tgt_dir, size, args.target_per_class)
    folds = halves(yt, names)  # adapt on one half, score the other, then the other way round
    source, validation = (x[tr].astype("float32"), y[tr]), (x[va].astype("float32"), y[va])
    model = kerastl.build("mobilenet_v2", num_classes=len(class_names), class_names=class_names,
                          input_shape=(size, size, 3), weights=args.weights)
    halves_ = [as_target(xt[i].astype("float32"), input_shape=model.input_shape) for i in folds]
    cache = FeatureCache()
    val = as_source("validation", validation, model=model)
    clean = as_source("clean_test", (xc.astype("float32"), yc), model=model)
    common = {"seed": seed, "image_size": size,
              "images": {"source": len(tr), "validation": len(va), "clean_test": len(yc),
                         "target_halves": [len(i) for i in folds]}}

    def scores(fold):
        other = 1 - fold
        return {"target_heldout": score(model, halves_[other], yt[folds[other]], cache),
                "target_adapted_on": score(model, halves_[fold], yt[folds[fold]], cache),
                "source_val": feats.accuracy(model, val, cache),
                "clean_test": feats.accuracy(model, clean, cache)}

    report = adapt.fit(model, source, halves_[0], method="source_only",
                       source_validation=validation, feature_cache=cache, seed=seed, verbose=0)
    fit_seconds = report.source_fit.seconds
    stage = report.source_fit.stages[report.source_fit.best_stage].name
    base = model.get_weights()
    rows = [_row(key, "source_only", [scores(0), scores(1)], [fit_seconds] * 2, fit_seconds,
                 recipe_stage=stage, shift=report.shift.to_dict(), **common)]
    for method in args.methods + ([] if "auto" in args.skip else ["auto"]):
        per_fold, seconds, extra = [], [], []
        for fold in (0, 1):
            model.set_weights(base)
            took, chosen = adapt_once(model, method, source, validation, halves_[fold], cache,
                                      seed)
            seconds.append(took)
            extra += [chosen] if chosen else []
            per_fold.append(scores(fold))
        rows.append(_row(key, method, per_fold, seconds, fit_seconds, auto=extra or None,
                         **common))
    model.set_weights(base)
    if "ceiling" not in args.skip:
        rows.append(_ceiling(key, args, seed, source, validation, [xt[i] for i in folds],
                             [yt[i] for i in folds], class_names, common))
    if args.adapt_python:
        rows += _adapt_library(key, args, model, cache, source, validation, halves_, folds, yt,
                               common)
    return rows


def adapt_once(model, method, source, validation, target, cache, seed):
    """Adapts the source-trained `model` with one row's method; returns (seconds, auto's choice).

    `METHOD_CALLS` rows call the method's function with their option; the others go
    through `kerastl.adapt.fit` (the method's own seconds; auto's whole run)."""
    import kerastl.adapt as adapt

    if method in METHOD_CALLS:
        name, kwargs = METHOD_CALLS[method]
        function = getattr(adapt, name)
        if "source_validation" in inspect.signature(function).parameters:
            kwargs = {**kwargs, "source_validation": validation}
        started = time.perf_counter()
        function(model, source, target, feature_cache=cache, seed=seed, **kwargs)
        return time.perf_counter() - started, None
    report = adapt.fit(model, source, target, method=method, source_validation=validation,
                       train_source=False, feature_cache=cache, seed=seed, verbose=0)
    if method != "auto":
        return report.candidates[0].seconds, None
    return report.seconds, {"chosen": report.method, "message": report.message,
                            "tried": [c.method for c in report.candidates]}


def _row(dataset, method, per_fold, seconds, fit_seconds, **values):
    """One table row: target accuracy pooled over the two folds (each half scored by the model
    adapted on the other half), the adapted-on figure, and the source scores averaged."""
    mean = {k: float(np.mean([f[k] for f in per_fold])) for k in per_fold[0]}
    row = {"benchmark": "adapt_v2", "dataset": dataset, "method": method, **mean,
           "folds": per_fold, "seconds": float(np.mean(seconds)),
           "cost_vs_fit": None if fit_seconds is None else 1.0 if method == "source_only"
           else (fit_seconds + float(np.mean(seconds))) / fit_seconds, **values}
    print(json.dumps(row), flush=True)
    return row


def _ceiling(key, args, seed, source, validation, target_x, target_y, class_names, common):
    """kerastl.fit default on the source plus one labelled half, scored on the other half."""
    import kerastl
    from kerastl.adapt.data import as_target
    from kerastl.training import FeatureCache

    size = args.image_size
    per_fold, seconds = [], []
    for fold in (0, 1):
        model = kerastl.build("mobilenet_v2", num_classes=len(class_names),
                              class_names=class_names, input_shape=(size, size, 3),
                              weights=args.weights)
        cache = FeatureCache()
        train = (np.concatenate([source[0], target_x[fold].astype("float32")]),
                 np.concatenate([source[1], target_y[fold]]))
        start = time.perf_counter()
        kerastl.fit(model, train, validation, feature_cache=cache, seed=seed, verbose=0)
        seconds.append(time.perf_counter() - start)
        other = as_target(target_x[1 - fold].astype("float32"), input_shape=model.input_shape)
        per_fold.append({"target_heldout": score(model, other, target_y[1 - fold], cache)})
    return _row(key, "ceiling", per_fold, seconds, None, **common)


def _adapt_library(key, args, model, cache, source, validation, halves_, folds, yt,
                   common) -> list:
    """ADAPT's DANN and DeepCORAL on the source-trained model's cached pooled features."""
    from kerastl.adapt import features as feats
    from kerastl.adapt.data import as_source

    xs, ys = feats.cached(cache, model, as_source("s", source, model=model))
    xv, yv = feats.cached(cache, model, as_source("v", validation, model=model))
    arrays = {"xs": xs, "ys": ys, "xv": xv, "yv": yv}
    for fold in (0, 1):
        arrays[f"x{fold}"] = feats.cached(cache, model, halves_[fold])[0]
        arrays[f"y{fold}"] = yt[folds[fold]]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.npz"
        np.savez(path, **arrays)
        out = Path(tmp) / "out.json"
        proc = subprocess.run([args.adapt_python, __file__, "--adapt-worker", str(path),
                               str(out)], capture_output=True, text=True,
                              env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        if proc.returncode != 0:
            row = {"benchmark": "adapt_v2", "dataset": key, "method": "ADAPT",
                   "error": proc.stderr[-2000:], **common}
            print(json.dumps(row), flush=True)
            return [row]
        results = json.loads(out.read_text())
    return [_row(key, f"ADAPT_{name}", value["folds"], value["seconds"], None, **common)
            for name, value in results.items()]


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
        per_fold, seconds = [], []
        for fold in (0, 1):
            keras.utils.set_random_seed(0)
            encoder = keras.Sequential([keras.Input((d,)),
                                        keras.layers.Dense(256, activation="relu")])
            task = keras.Sequential([keras.Input((256,)),
                                     keras.layers.Dense(k, activation="softmax")])
            start = time.perf_counter()
            model = cls(encoder=encoder, task=task, Xt=f[f"x{fold}"], lambda_=1.0,
                        random_state=0, loss="categorical_crossentropy",
                        optimizer=keras.optimizers.Adam(1e-3))
            model.fit(f["xs"], ys, epochs=30, batch_size=32, verbose=0)
            seconds.append(time.perf_counter() - start)

            def acc(x, y):
                return float((np.asarray(model.predict(x, verbose=0)).argmax(1) == y).mean())

            per_fold.append({"target_heldout": acc(f[f"x{1 - fold}"], f[f"y{1 - fold}"]),
                             "target_adapted_on": acc(f[f"x{fold}"], f[f"y{fold}"]),
                             "source_val": acc(f["xv"], f["yv"])})
        results[name] = {"folds": per_fold, "seconds": seconds}
    json.dump(results, open(out, "w"))


COLUMNS = (("target_heldout", "target (held-out half)"),
           ("target_adapted_on", "target (adapted-on half)"),
           ("source_val", "source val"), ("clean_test", "clean test"))


def _cell(values, scale=100.0) -> str:
    values = [v * scale for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"


def _table(rows) -> str:
    """Mean ± std over seeds; "minus source-only" is the paired difference per seed, and the
    share of the gap (method - source-only) / (ceiling - source-only) per seed (seeds whose
    gap is under 2 points are left out of it)."""
    head = " | ".join(label for _, label in COLUMNS)
    lines = [f"| dataset | method | seeds | {head} | target minus source-only | share of the "
             "gap to the ceiling | seconds | x fit |",
             "|---|---|---|" + "---|" * len(COLUMNS) + "---|---|---|---|"]
    rows = [r for r in rows if r.get("benchmark") == "adapt_v2" and "error" not in r]
    for key in dict.fromkeys(r["dataset"] for r in rows):
        mine = [r for r in rows if r["dataset"] == key]
        base = {r["seed"]: r["target_heldout"] for r in mine if r["method"] == "source_only"}
        top = {r["seed"]: r["target_heldout"] for r in mine if r["method"] == "ceiling"}
        for method in dict.fromkeys(r["method"] for r in mine):
            group = [r for r in mine if r["method"] == method]
            cells = [_cell([r.get(c) for r in group]) for c, _ in COLUMNS]
            diff = _cell([r["target_heldout"] - base[r["seed"]] for r in group
                          if r["seed"] in base])
            share = _cell([(r["target_heldout"] - base[seed]) / (top[seed] - base[seed])
                           for r in group for seed in [r["seed"]]
                           if seed in base and seed in top and top[seed] - base[seed] >= 0.02])
            chosen = sorted({a["chosen"] for r in group for a in (r.get("auto") or [])})
            name = method + (f" -> {', '.join(chosen)}" if chosen else "")
            cost = _cell([r["cost_vs_fit"] for r in group], scale=1.0) \
                if method != "ceiling" and not method.startswith("ADAPT") else "-"
            secs = _cell([r["seconds"] for r in group], scale=1.0)
            lines.append(f"| {key} | {name} | {len(group)} | {' | '.join(cells)} | {diff} | "
                         f"{share} | {secs} | {cost} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="flowers,cats")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--source-images", type=int, default=None,
                        help="Source training images, the same number per class (default: all).")
    parser.add_argument("--seeds", default="0",
                        help="Seeds of the source train/validation split and of training.")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--skip", default="", help="Rows not to run: auto, ceiling (comma-separated).")
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
    args.skip = [m for m in args.skip.split(",") if m]
    unknown = sorted(set(args.skip) - {"auto", "ceiling"})
    if unknown:
        parser.error(f"--skip takes auto and ceiling. Received: {','.join(unknown)}")
    if args.weights == "none":
        args.weights = None
    seed_keras_home(_assets())
    done = []
    if args.results and Path(args.results).is_file():
        done = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line]
    rows = list(done)
    for seed in [] if args.table_only else [int(s) for s in args.seeds.split(",")]:
        for key in args.datasets.split(","):
            if any(r["dataset"] == key and r.get("seed") == seed for r in done):
                continue
            new = run_dataset(key, args, seed)
            rows += new
            if args.results:
                Path(args.results).parent.mkdir(parents=True, exist_ok=True)
                with open(args.results, "a") as f:
                    f.writelines(json.dumps(r) + "\n" for r in new)
    print(_table(rows))


if __name__ == "__main__":
    sys.exit(main())
