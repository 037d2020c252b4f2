"""Few-shot prototypes, class addition without forgetting, and on-device prototypes.

Stages (``--stages``, default all; features are computed once and kept in ``--cache``):

features  MobileNetV2 (ImageNet) at 224 px, pooled features of every image of
          flowers_kaggle_227/{train,val} and cats_and_dogs_filtered/{train,validation}
          through kerastl.fewshot's own path (kerastl.training.FeatureCache).
build     Only the build timing of the device stage (no features cache needed).
device    Times kerastl.fewshot.build of a 5-way model from 25 flower images (the
          backbone already loaded, after one warm-up build), and exports that model
          with kerastl.fewshot.export (float32 + int8; --calibration images from the
          train folder), checked on the 200 val images through LiteRT.
episodes  N-way K-shot episodes (flowers 5-way, cats/dogs 2-way; 1/5/10 shots;
          15 queries per class). Honest protocol: every choice (the probe's L2
          strength, the Baseline++ steps) is made on --choice-episodes episodes drawn
          from the *train* folder; the reported mean +- 95% CI is over episodes drawn
          from the separate val/validation folder (prototypes: --episodes, the probe
          and Baseline++: --other-episodes). Methods: prototypes (cosine),
          baseline++ (cosine classifier initialised at the prototypes, Adam on the
          support set), logistic (L2 logistic-regression probe,
          kerastl.training.linear_head.solve_linear), fit (kerastl.fit, recipe
          "auto", no validation data: the closed-form head with its strength chosen by
          cross-validation on the shots; fewer episodes, see --fit-episodes).
extend    Flowers: a classifier of 3 classes (kerastl.fit on the train folder's images
          of daisy/dandelion/rose), then the other 2 classes (sunflower, tulip) added
          with kerastl.fewshot.extend (lwf, ewc, replay, naive; and slda from the
          old classes' ClassStatistics, no old images). Epochs / strengths
          chosen on a 20% validation split of the train folder (highest overall
          accuracy there); old- and new-class accuracy on the val folder (test).
          Joint retraining (kerastl.fit on all 5 classes) is the ceiling. Once per
          seed of --extend-seeds (the validation split); several seeds add a
          mean ± std table with each method's old-class accuracy minus joint's.

fit and extend run on the cached features: the kerastl model they train has an
identity "backbone" on 1x1x1280 inputs holding the MobileNetV2 features, which is
what kerastl.fit / extend compute with a frozen backbone (they cache the same
pooled features), without running MobileNetV2 again for every episode.

Usage:
  KERASTL_ASSETS=../shared/assets python benchmarks/fewshot_benchmark.py \
      --cache /tmp/fewshot_features_224.npz --results benchmarks/results/fewshot.jsonl
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

from _common import seed_keras_home

REPO = Path(__file__).resolve().parents[1]
DATASETS = {"flowers": ("flowers_kaggle_227", "train", "val", 5),
            "cats_dogs": ("cats_and_dogs_filtered", "train", "validation", 2)}
L2_GRID = (1e-3, 1e-2, 1e-1)
STEP_GRID = (10, 50)


def _assets() -> Path:
    return Path(os.environ.get("KERASTL_ASSETS", REPO.parent / "shared" / "assets")).resolve()


class Sink:
    """Prints each record as one JSON line, appends it to the results file, keeps it."""

    def __init__(self, path):
        self.file = open(path, "a", encoding="utf-8") if path else None
        self.records = []

    def emit(self, record: dict) -> None:
        line = json.dumps(record)
        print(line, flush=True)
        self.records.append(record)
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()


def _emit(record: dict, sink: Sink) -> None:
    sink.emit(record)


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}"


def print_tables(records) -> None:
    """Prints the episode table (mean +- 95% CI) and the class-addition table."""
    episodes = [r for r in records if r["stage"] == "episodes"]
    if episodes:
        print("\n| dataset | ways | shots | method | episodes | accuracy % (95% CI) |")
        print("|---|---|---|---|---|---|")
        for r in episodes:
            value = (f"{100 * r['mean']:.1f} +- {100 * r['ci95']:.1f}" if "mean" in r
                     else f"failed: {r.get('error')}")
            print(f"| {r['dataset']} | {r['ways']} | {r['shots']} | {r['method']} | "
                  f"{r['episodes']} | {value} |")
    extend = [r for r in records if r["stage"] == "extend"]
    if extend:
        print("\n| method | chosen on validation | old-class acc % | new-class acc % | all % |")
        print("|---|---|---|---|---|")
        for r in extend:
            print(f"| {r['method']} | {r.get('chosen_on_validation', '')} | "
                  f"{_pct(r['old_accuracy'])} | {_pct(r['new_accuracy'])} | "
                  f"{_pct(r['accuracy'])} |")
    if len({r.get("seed", 0) for r in extend}) > 1:
        print_extend_summary(extend)


def _mean_std_cell(values) -> str:
    """``"84.7 ± 1.9"`` in percent, Nones left out; ``"-"`` when nothing is left."""
    values = 100 * np.array([v for v in values if v is not None])
    return f"{values.mean():.1f} ± {values.std():.1f}" if len(values) else "-"


def print_extend_summary(extend) -> None:
    """Mean ± std over the split seeds, and each method's old-class accuracy minus joint's."""
    joint = {r.get("seed", 0): r["old_accuracy"] for r in extend if r["method"] == "joint"}
    print("\n| method | seeds | old-class % | new-class % | all % | old-class minus joint |")
    print("|---|---|---|---|---|---|")
    for method in dict.fromkeys(r["method"] for r in extend):
        rows = [r for r in extend if r["method"] == method]
        cells = [_mean_std_cell(r[key] for r in rows)
                 for key in ("old_accuracy", "new_accuracy", "accuracy")]
        cells.append(_mean_std_cell(r["old_accuracy"] - joint[r.get("seed", 0)] for r in rows))
        print(f"| {method} | {len(rows)} | " + " | ".join(cells) + " |")


def _load(folder: Path, size: int):
    import kerastl

    data = kerastl.data.from_directory(folder, image_size=size, shuffle=False, batch_size=64)
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in data.train])
    return np.concatenate(xs), np.concatenate(ys), list(data.class_names)


def stage_features(args, sink) -> dict:
    import kerastl
    from kerastl.fewshot._data import features

    model = kerastl.build("mobilenet_v2", 2, input_shape=args.image_size)
    arrays = {}
    for key, (name, train, test, _) in DATASETS.items():
        for split, folder in (("train", train), ("test", test)):
            start = time.perf_counter()
            x, y, _ = _load(_assets() / "datasets" / name / folder, args.image_size)
            f = features("data", model, (x, y), width=1280)
            arrays[f"{key}_{split}_x"], arrays[f"{key}_{split}_y"] = f.x, f.y
            _emit({"stage": "features", "dataset": key, "split": split, "images": len(x),
                   "seconds": round(time.perf_counter() - start, 1)}, sink)
    np.savez(args.cache, **arrays)
    return arrays


def build_time(args, sink):
    """Times kerastl.fewshot.build of a 5-way model from 25 train photos (median of 3)."""
    import kerastl
    import kerastl.fewshot as fs

    model = kerastl.build("mobilenet_v2", 2, input_shape=args.image_size)
    root = _assets() / "datasets" / DATASETS["flowers"][0]
    x, y, names = _load(root / "train", args.image_size)
    rng = np.random.default_rng(0)
    picks = [rng.choice(np.flatnonzero(y == c), 7, replace=False) for c in range(5)]
    support = np.concatenate([p[:5] for p in picks])
    warmup = np.concatenate([p[5:] for p in picks])
    fs.build(model, (x[warmup], y[warmup]))  # traces the feature pass once
    times = []
    for _ in range(3):
        start = time.perf_counter()
        proto = fs.build(model, (x[support], y[support]), class_names=names, metric=args.metric)
        times.append(time.perf_counter() - start)
    _emit({"stage": "build_time", "metric": args.metric, "images": 25, "ways": 5,
           "seconds_median": round(float(np.median(times)), 2),
           "seconds": [round(t, 2) for t in times]}, sink)
    return proto, x, y, rng, support, root


def stage_device(args, sink) -> None:
    """Build time of a 5-way model from 25 images, and the on-device export check."""
    import kerastl.fewshot as fs

    proto, x, y, rng, support, root = build_time(args, sink)
    if "device" not in args.stages:
        return
    tx, ty, _ = _load(root / DATASETS["flowers"][2], args.image_size)
    cal = x[rng.choice(len(x), args.calibration, replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        report = fs.export(proto, tmp, quantization=("float32", "int8"),
                           representative_data=cal, num_calibration_samples=args.calibration,
                           support_data=(x[support], y[support]), eval_data=(tx, ty),
                           verbose=0)
        for a in report.artifacts:
            _emit({"stage": "export", "metric": args.metric, "artifact": a.name,
                   "size_bytes": a.size_bytes, "agreement": a.agreement,
                   "on_device_agreement": a.on_device_agreement,
                   "accuracy": a.accuracy, "keras_accuracy": report.keras_accuracy,
                   "check_images": report.num_check_images,
                   "seconds": round(time.perf_counter() - start, 1)}, sink)


def _feature_model(num_classes: int, names=None):
    """A kerastl model whose 'backbone' is the identity on 1x1x1280 cached features."""
    import keras

    import kerastl

    inputs = keras.Input((1, 1, 1280))
    identity = keras.Model(inputs, keras.layers.Identity()(inputs), name="identity")
    return kerastl.build(identity, num_classes, class_names=names)


def _as_images(f):
    return np.asarray(f, "float32")[:, None, None, :]


def _fit_episodes(x, y, ways, shots, episodes, seed):
    """kerastl.fit (recipe auto, no validation data) on the shots of each episode."""
    import kerastl
    from kerastl.fewshot.episodes import eligible_classes, sample_episode

    classes = eligible_classes(y, shots, 15, ways)
    by_class = {c: np.flatnonzero(y == c) for c in classes}
    rng = np.random.default_rng(seed)
    acc = []
    for _ in range(episodes):
        s, sy, q, qy = sample_episode(rng, by_class, classes, ways=ways, shots=shots,
                                      queries=15)
        model = _feature_model(ways)
        try:
            kerastl.fit(model, (_as_images(x[s]), sy), verbose=0)
        except ValueError as err:  # e.g. too few shots for cross-validation
            return None, str(err).splitlines()[0][:200]
        pred = model.predict(_as_images(x[q]), verbose=0).argmax(axis=1)
        acc.append(float(np.mean(pred == qy)))
    return acc, None


def stage_episodes(args, arrays, sink) -> None:
    from kerastl.fewshot.episodes import mean_ci, run_episodes

    for key, (_, _, _, ways) in DATASETS.items():
        tr_x, tr_y = arrays[f"{key}_train_x"], arrays[f"{key}_train_y"]
        te_x, te_y = arrays[f"{key}_test_x"], arrays[f"{key}_test_y"]
        for shots in args.shots:
            common = {"ways": ways, "shots": shots, "queries": 15}
            choice = {"prototypes": {}}
            scores = {l2: run_episodes(tr_x, tr_y, episodes=args.choice_episodes, seed=1,
                                       method="logistic", l2=l2, **common).mean
                      for l2 in L2_GRID}
            choice["logistic"] = {"l2": max(scores, key=scores.get)}
            scores = {n: run_episodes(tr_x, tr_y, episodes=args.choice_episodes, seed=1,
                                      method="baseline++", fine_tune_steps=n, **common).mean
                      for n in STEP_GRID}
            choice["baseline++"] = {"fine_tune_steps": max(scores, key=scores.get)}
            for method, chosen in choice.items():
                start = time.perf_counter()
                count = args.episodes if method == "prototypes" else args.other_episodes
                r = run_episodes(te_x, te_y, episodes=count, seed=args.seed,
                                 method=method, **chosen, **common)
                _emit({"stage": "episodes", "dataset": key, "ways": ways, "shots": shots,
                       "method": method, "chosen_on_train_episodes": chosen,
                       "episodes": r.episodes, "mean": r.mean, "ci95": r.ci95,
                       "seconds": round(time.perf_counter() - start, 1)}, sink)
            if args.fit_episodes:
                start = time.perf_counter()
                acc, error = _fit_episodes(te_x, te_y, ways, shots, args.fit_episodes,
                                           args.seed)
                record = {"stage": "episodes", "dataset": key, "ways": ways, "shots": shots,
                          "method": "fit", "episodes": args.fit_episodes,
                          "seconds": round(time.perf_counter() - start, 1)}
                if acc is None:
                    record["error"] = error
                else:
                    record["mean"], record["ci95"], _ = mean_ci(acc)
                _emit(record, sink)


def _accuracy(model, x, y, k):
    pred = model.predict(_as_images(x), verbose=0).argmax(axis=1)
    old, new = y < k, y >= k
    return {"old_accuracy": float(np.mean(pred[old] == y[old])),
            "new_accuracy": float(np.mean(pred[new] == y[new])) if new.any() else None,
            "accuracy": float(np.mean(pred == y))}


EXTEND_GRID = {
    "naive": ("naive", [{}]),
    "lwf (distill_over=old)": ("lwf", [{"distill_over": "old", "distillation": d}
                                       for d in (1.0, 10.0)]),
    "lwf": ("lwf", [{"distill_over": "all", "distillation": d} for d in (0.03, 0.1, 0.3)]),
    "ewc": ("ewc", [{"ewc_strength": s} for s in (1e2, 1e4)]),
    # Replay is fitted in closed form (no epochs) and its buffer size is the
    # user's memory budget, not a hyperparameter: one row per size.
    "replay (5 per old class)": ("replay", [{"replay_per_class": 5}]),
    "replay (20 per old class)": ("replay", [{"replay_per_class": 20}]),
}


def stage_extend(args, arrays, sink) -> None:
    """The class-addition rows, once per seed of `--extend-seeds` (train/validation split)."""
    for seed in args.extend_seeds:
        _extend_once(seed, arrays, lambda record: _emit({**record, "seed": seed}, sink))


def _extend_once(seed, arrays, emit) -> None:
    import kerastl
    import kerastl.fewshot as fs

    x, y = arrays["flowers_train_x"], arrays["flowers_train_y"]
    tx, ty = arrays["flowers_test_x"], arrays["flowers_test_y"]
    rng = np.random.default_rng(seed)
    val = np.zeros(len(y), bool)
    for c in range(5):
        rows = rng.permutation(np.flatnonzero(y == c))
        val[rows[: len(rows) // 5]] = True
    k = 3
    sets = {"old_tr": (~val) & (y < k), "new_tr": (~val) & (y >= k)}
    joint = _feature_model(5)
    kerastl.fit(joint, (_as_images(x[~val]), y[~val]), verbose=0)
    emit({"stage": "extend", "method": "joint", **_accuracy(joint, tx, ty, k)})
    base = _feature_model(k, names=["daisy", "dandelion", "rose"])
    kerastl.fit(base, (_as_images(x[sets["old_tr"]]), y[sets["old_tr"]]), verbose=0)
    emit({"stage": "extend", "method": "old_model (3 classes)",
          **_accuracy(base, tx[ty < k], ty[ty < k], k)})
    new = (_as_images(x[sets["new_tr"]]), y[sets["new_tr"]] - k)
    old = (_as_images(x[sets["old_tr"]]), y[sets["old_tr"]])
    for label, (method, grid) in EXTEND_GRID.items():
        best = None
        for epochs in ((None,) if method == "replay" else (10, 30)):
            for extra in grid:
                r = fs.extend(base, new, old_data=old, method=method, epochs=epochs or 30,
                              learning_rate=1e-3, class_names=["sunflower", "tulip"],
                              eval_data=(_as_images(x[val]), y[val]), **extra)
                if best is None or r.accuracy > best[0]:
                    best = (r.accuracy, epochs, extra, r.model)
        _, epochs, extra, model = best
        emit({"stage": "extend", "method": label, "chosen_on_validation":
              {"epochs": epochs, **extra}, **_accuracy(model, tx, ty, k)})
    # Streaming LDA: the old classes' statistics are taken when the old model is
    # trained; the extension sees only them and the new images (nothing to choose).
    start = time.perf_counter()
    stats = fs.class_statistics(base, old)
    stats_seconds = time.perf_counter() - start
    r = fs.extend(base, new, method="slda", statistics=stats, class_names=["sunflower", "tulip"])
    emit({"stage": "extend", "method": "slda (old-class statistics, no old images)",
          "chosen_on_validation": {}, "statistics_seconds": round(stats_seconds, 2),
          "extend_seconds": round(r.seconds, 2), **_accuracy(r.model, tx, ty, k)})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", default="features,device,episodes,extend")
    parser.add_argument("--cache", default="/tmp/fewshot_features_224.npz")
    parser.add_argument("--results", default=None)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--shots", default="1,5,10")
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--other-episodes", type=int, default=600,
                        help="episodes of the logistic and baseline++ rows")
    parser.add_argument("--choice-episodes", type=int, default=100)
    parser.add_argument("--calibration", type=int, default=100)
    parser.add_argument("--fit-episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--metric", default="cosine",
                        help="prototype metric of the build and device stages")
    parser.add_argument("--extend-seeds", default=None,
                        help="comma-separated seeds of the extend stage's train/validation "
                             "split (default: --seed); with several, a mean ± std table")
    args = parser.parse_args(argv)
    args.extend_seeds = ([int(s) for s in args.extend_seeds.split(",")]
                         if args.extend_seeds else [args.seed])
    args.shots = [int(s) for s in args.shots.split(",")]
    stages = args.stages = args.stages.split(",")
    seed_keras_home(_assets())
    sink = Sink(args.results)
    arrays = None
    if "features" in stages or (not Path(args.cache).is_file()
                                and {"episodes", "extend"} & set(stages)):
        arrays = stage_features(args, sink)
    elif {"episodes", "extend"} & set(stages):
        arrays = dict(np.load(args.cache))
    if "device" in stages or "build" in stages:
        stage_device(args, sink)
    if "episodes" in stages:
        stage_episodes(args, arrays, sink)
    if "extend" in stages:
        stage_extend(args, arrays, sink)
    print_tables(sink.records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
