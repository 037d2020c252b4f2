"""Data-size sweep of kerastl's recipes against a linear probe and the TF tutorial recipe.

Honest protocol: for every point (dataset, image size, images per class,
seed) the labelled images come from the dataset's train folder only:
``k`` training images per class and ``max(1, round(k / 4))`` validation
images per class (train:validation = 80:20; ``all`` = the whole folder split
80:20), a different random subset per seed. Every choice (the probe's ``C``,
kerastl's head strength, epochs and stages, the tutorial's nothing) uses
those images only. The reported accuracy is on the dataset's separate
validation folder, used as the **test** split: nothing is chosen on it.

Methods:
  probe_val  scikit-learn LogisticRegression on the frozen backbone's pooled
             features (kerastl.feature_extractor of a fresh model), C chosen on
             the validation images (17 values, 1e-4..1e4), fitted on the
             training images.
  probe_cv   LogisticRegressionCV: C by stratified k-fold cross-validation
             (k = min(5, smallest class)) on training + validation images,
             refitted on all of them (it sees 25% more labelled images than
             any other method fits on).
  auto, feature_extraction, two_stage, fine_tune, progressive
             kerastl.build("mobilenet_v2") + kerastl.fit(recipe=...), defaults.
  tutorial   the TF transfer-learning tutorial recipe (fit_benchmark.py's
             baseline) on the same arrays: 10 frozen epochs Adam(1e-4), 10
             epochs of layers[100:] at RMSprop(1e-5); its last epoch.

Usage:
  KERASTL_ASSETS=../shared/assets python benchmarks/recipe_sweep.py \
      --datasets flowers_kaggle_227,cats_and_dogs_filtered --image-sizes 160 \
      --sizes 5,10,25,50,100,all --seeds 0,1,2 --methods probe_val,probe_cv,auto \
      --results benchmarks/results/recipe_sweep.jsonl

Points already in --results are skipped, so the sweep can be run in parts.
Prints one JSON line per point and, at the end, a table of mean ± std test
accuracy and seconds per (dataset, px, size, method) over the seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from _common import append_record, read_records, markdown_table, seed_keras_home, tutorial_model, tutorial_unfreeze

REPO = Path(__file__).resolve().parents[1]
DATASETS = {"cats_and_dogs_filtered": ("train", "validation"),
            "flowers_kaggle_227": ("train", "val")}
METHODS = ("probe_val", "probe_cv", "auto", "feature_extraction", "two_stage", "fine_tune",
           "progressive", "tutorial")
C_GRID = np.logspace(-4, 4, 17)


def _assets() -> Path:
    return Path(os.environ.get("KERASTL_ASSETS", REPO.parent / "shared" / "assets")).resolve()


def load_folder(folder: Path, size: int):
    """All images of a class-per-folder tree as uint8 arrays (Keras's loader, bilinear)."""
    import keras

    ds = keras.utils.image_dataset_from_directory(folder, image_size=(size, size),
                                                  shuffle=False, batch_size=64, verbose=False)
    xs, ys = [], []
    for x, y in ds:
        xs.append(np.asarray(x).round().clip(0, 255).astype("uint8"))
        ys.append(np.asarray(y))
    return np.concatenate(xs), np.concatenate(ys), list(ds.class_names)


def split(labels: np.ndarray, size, seed: int):
    """Indices of (train, validation) for `size` images per class ("all": 80:20 of each class)."""
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        if size == "all":
            n_val = max(1, round(len(members) * 0.2))
            val.append(members[:n_val])
            train.append(members[n_val:])
        else:
            n_val = max(1, round(size / 4))
            val.append(members[:n_val])
            train.append(members[n_val:n_val + size])
    return np.concatenate(train), np.concatenate(val)


def _probe_val(f, y, tr, va, test_f, test_y):
    from sklearn.linear_model import LogisticRegression

    best = None
    for c in C_GRID:
        model = LogisticRegression(C=c, max_iter=5000).fit(f[tr], y[tr])
        score = model.score(f[va], y[va])
        if best is None or score > best[0]:
            best = (score, c, model)
    return {"test_accuracy": best[2].score(test_f, test_y), "C": float(best[1])}


def _probe_cv(f, y, tr, va, test_f, test_y):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    both = np.concatenate([tr, va])
    folds = int(min(5, np.bincount(y[both]).min()))
    if folds < 2:
        return _probe_val(f, y, tr, va, test_f, test_y)
    model = LogisticRegressionCV(Cs=C_GRID, cv=StratifiedKFold(folds, shuffle=True,
                                                               random_state=0),
                                 scoring="accuracy", max_iter=5000).fit(f[both], y[both])
    return {"test_accuracy": model.score(test_f, test_y), "C": float(np.ravel(model.C_)[0])}


def _augmentation(name):
    """`kerastl.build`'s augmentation for --augmentation (only used with augment_passes)."""
    import keras

    return None if name == "none" else [keras.layers.RandomFlip("horizontal")]


def _kerastl(method, x, y, tr, va, test_x, test_y, size, num_classes, seed, fit_kwargs,
             augmentation="none"):
    import kerastl

    start = time.perf_counter()
    model = kerastl.build("mobilenet_v2", num_classes, input_shape=size,
                          augmentation=_augmentation(augmentation))
    recipe = "auto" if method == "auto" else method
    report = kerastl.fit(model, (x[tr].astype("float32"), y[tr]),
                         (x[va].astype("float32"), y[va]), recipe=recipe, seed=seed, verbose=0,
                         **fit_kwargs)
    fit_seconds = time.perf_counter() - start
    probs = model.predict(test_x.astype("float32"), batch_size=64, verbose=0)
    predicted = probs.argmax(axis=1) if probs.shape[1] > 1 else (probs[:, 0] > 0.5)
    return {"test_accuracy": float((predicted == test_y).mean()), "recipe": report.recipe,
            "fit_seconds": fit_seconds,
            "best_stage": report.best_stage,
            "stages": [{"name": s.name, "solver": s.solver, "l2": s.l2,
                        "val": s.best.get("val_accuracy"), "epochs_run": s.epochs_run,
                        "seconds": s.seconds, "comparison": s.comparison}
                       for s in report.stages],
            "val_accuracy": report.best.get("val_accuracy")}


def _tutorial(x, y, tr, va, test_x, test_y, size, num_classes, seed):
    import keras
    import tensorflow as tf

    start = time.perf_counter()
    keras.utils.set_random_seed(seed)
    train = tf.data.Dataset.from_tensor_slices((x[tr].astype("float32"), y[tr]))
    train = train.shuffle(len(tr), seed=seed).batch(32).prefetch(tf.data.AUTOTUNE)
    model, base = tutorial_model(size, num_classes)
    model.fit(train, epochs=10, verbose=0)
    tutorial_unfreeze(model, base)
    model.fit(train, epochs=20, initial_epoch=10, verbose=0)
    fit_seconds = time.perf_counter() - start
    result = model.evaluate(test_x.astype("float32"), test_y, batch_size=64, verbose=0,
                            return_dict=True)
    return {"test_accuracy": float(result["accuracy"]), "fit_seconds": fit_seconds}


def _features(x, size, num_classes):
    import kerastl

    extractor = kerastl.feature_extractor(kerastl.build("mobilenet_v2", num_classes,
                                                        input_shape=size))
    return extractor.predict(x.astype("float32"), batch_size=64, verbose=0)


def _key(r):
    return (r["dataset"], r["image_size"], str(r["size"]), r["seed"], r["method"])


def _table(records):
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["image_size"], str(r["size"]), r["method"]),
                          []).append(r)
    order = {m: i for i, m in enumerate(METHODS)}
    order.update({r["method"]: len(METHODS) for r in records if r["method"] not in order})
    sizes = {"5": 0, "10": 1, "25": 2, "50": 3, "100": 4, "all": 5}
    rows = [("dataset", "px", "per class", "method", "test acc (mean ± std)", "seeds",
             "seconds (mean)")]
    for key in sorted(groups, key=lambda k: (k[0], k[1], sizes.get(k[2], 9), order[k[3]])):
        accs = np.array([r["test_accuracy"] for r in groups[key]])
        secs = np.mean([r["seconds"] for r in groups[key]])
        rows.append((key[0], str(key[1]), key[2], key[3],
                     f"{accs.mean():.3f} ± {accs.std():.3f}", str(len(accs)), f"{secs:.1f}"))
    return markdown_table(rows)


def _wide(records):
    """One row per (dataset, px, size), one ``mean ± std (seeds)`` column per method."""
    groups, present = {}, []
    for r in records:
        groups.setdefault((r["dataset"], r["image_size"], str(r["size"])), {}).setdefault(
            r["method"], []).append(r["test_accuracy"])
        if r["method"] not in present:
            present.append(r["method"])
    order = {m: i for i, m in enumerate(METHODS)}
    methods = sorted(present, key=lambda m: (order.get(m, len(METHODS)), m))
    sizes = {"5": 0, "10": 1, "25": 2, "50": 3, "100": 4, "all": 5}
    rows = [("dataset", "px", "per class", *methods)]
    for key in sorted(groups, key=lambda k: (k[0], k[1], sizes.get(k[2], 9))):
        cells = []
        for method in methods:
            accs = np.array(groups[key].get(method, []))
            cells.append(f"{accs.mean():.3f} ± {accs.std():.3f} ({len(accs)})" if len(accs)
                         else "")
        rows.append((key[0], str(key[1]), key[2], *cells))
    return markdown_table(rows)


def _paired_cell(records, method, against):
    """``"+0.3 ± 0.5 (3)"``: mean ± std over seeds of ``method - against`` (test points)."""
    by_seed = {r["seed"]: r for r in records if r["method"] == against}
    diffs = [100 * (r["test_accuracy"] - by_seed[r["seed"]]["test_accuracy"])
             for r in records if r["method"] == method and r["seed"] in by_seed]
    if not diffs:
        return "", None
    return f"{np.mean(diffs):+.1f} ± {np.std(diffs):.1f} ({len(diffs)})", float(np.mean(diffs))


def _paired(records, method="auto"):
    """Per (dataset, px, size): `method` minus each other method on the same seeds.

    Columns: the difference to ``probe_cv``, to the worst-for-`method` other
    kerastl recipe (the one it trails most, named), and to ``tutorial``, in
    test points (one test image: ``100 / n_test``), and `method`'s seconds
    over the tutorial's on the same seeds: the whole point (model build,
    training, test prediction) and, where recorded, build + training only.
    """
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["image_size"], str(r["size"])), []).append(r)
    sizes = {"5": 0, "10": 1, "25": 2, "50": 3, "100": 4, "all": 5}
    rows = [("dataset", "px", "per class", "one test image", f"{method} - probe_cv",
             f"{method} - other recipe (worst)", f"{method} - tutorial",
             "seconds / tutorial's", "build + fit seconds / tutorial's")]
    for key in sorted(groups, key=lambda k: (k[0], k[1], sizes.get(k[2], 9))):
        group = groups[key]
        if not any(r["method"] == method for r in group):
            continue
        others = sorted({r["method"] for r in group} - {method, "probe_val", "probe_cv",
                                                          "tutorial"})
        worst = ("", None)
        for other in others:
            cell, mean = _paired_cell(group, method, other)
            if mean is not None and (worst[1] is None or mean < worst[1]):
                worst = (f"{cell} vs {other}", mean)
        tutorial = {r["seed"]: r["seconds"] for r in group if r["method"] == "tutorial"}
        ratios = [r["seconds"] / tutorial[r["seed"]] for r in group
                  if r["method"] == method and r["seed"] in tutorial]
        fit_tutorial = {r["seed"]: r["fit_seconds"] for r in group
                        if r["method"] == "tutorial" and "fit_seconds" in r}
        fit_ratios = [r["fit_seconds"] / fit_tutorial[r["seed"]] for r in group
                      if r["method"] == method and r["seed"] in fit_tutorial
                      and "fit_seconds" in r]
        n_test = group[0]["n_test"]
        rows.append((key[0], str(key[1]), key[2], f"{100 / n_test:.2f}",
                     _paired_cell(group, method, "probe_cv")[0], worst[0],
                     _paired_cell(group, method, "tutorial")[0],
                     f"{np.mean(ratios):.2f}" if ratios else "",
                     f"{np.mean(fit_ratios):.2f} ({len(fit_ratios)})" if fit_ratios else ""))
    return markdown_table(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--image-sizes", default="160")
    parser.add_argument("--sizes", default="5,10,25,50,100,all")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--methods", default="probe_val,probe_cv,auto")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"
                                                 / "recipe_sweep.jsonl"))
    parser.add_argument("--fit-kwargs", default="{}",
                        help="JSON of extra kerastl.fit arguments (a variant of the defaults); "
                             "recorded, and the kerastl methods are labelled with --label")
    parser.add_argument("--label", default="", help="suffix of the kerastl method names")
    parser.add_argument("--augmentation", choices=("none", "flip"), default="none",
                        help="the model's augmentation layer (kerastl.build): none, or a "
                             "horizontal RandomFlip (what fit's augment_passes then cache)")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--wide", action="store_true",
                        help="with --table-only: one column per method")
    parser.add_argument("--paired", default=None, metavar="METHOD",
                        help="with --table-only: METHOD minus probe_cv, the other recipes "
                             "and the tutorial on the same seeds, and its time over the "
                             "tutorial's")
    args = parser.parse_args(argv)
    results = Path(args.results)
    done = read_records(results)
    if args.table_only:
        print(_paired(done, args.paired) if args.paired
              else _wide(done) if args.wide else _table(done))
        return 0
    methods = [m.strip() for m in args.methods.split(",")]
    fit_kwargs = json.loads(args.fit_kwargs)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        parser.error(f"unknown methods {bad}; choose from {', '.join(METHODS)}")
    seed_keras_home(_assets())
    seen = {_key(r) for r in done}
    sizes = [s if s == "all" else int(s) for s in args.sizes.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    for dataset in args.datasets.split(","):
        train_dir, test_dir = (_assets() / "datasets" / dataset / d for d in DATASETS[dataset])
        for px in (int(p) for p in args.image_sizes.split(",")):
            x, y, names = load_folder(train_dir, px)
            test_x, test_y, _ = load_folder(test_dir, px)
            feats = None
            for size in sizes:
                for seed in seeds:
                    tr, va = split(y, size, seed)
                    for method in methods:
                        label = (method + args.label if method in METHODS[2:7] else method)
                        record = {"dataset": dataset, "image_size": px, "size": size,
                                  "seed": seed, "method": label}
                        if label != method:
                            record["fit_kwargs"] = fit_kwargs
                            record["augmentation"] = args.augmentation
                        if _key(record) in seen:
                            continue
                        if method.startswith("probe") and feats is None:
                            # Once per dataset and size (not in the probe's seconds).
                            feats = (_features(x, px, len(names)),
                                     _features(test_x, px, len(names)))
                        load = os.getloadavg()[0]
                        start = time.perf_counter()
                        if method.startswith("probe"):
                            from threadpoolctl import threadpool_limits

                            fn = _probe_val if method == "probe_val" else _probe_cv
                            # One BLAS thread, as kerastl's own linear solver uses.
                            with threadpool_limits(limits=1, user_api="blas"):
                                out = fn(feats[0], y, tr, va, feats[1], test_y)
                        elif method == "tutorial":
                            out = _tutorial(x, y, tr, va, test_x, test_y, px, len(names), seed)
                        else:
                            out = _kerastl(method, x, y, tr, va, test_x, test_y, px,
                                           len(names), seed, fit_kwargs, args.augmentation)
                        record.update(out, seconds=time.perf_counter() - start,
                                      n_train=len(tr), n_val=len(va), n_test=len(test_y),
                                      load_before=load)
                        append_record(results, record)
                        done.append(record)
    print(_table(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
