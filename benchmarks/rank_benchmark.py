"""Does `kerastl.rank_backbones` order backbones the way `kerastl.fit` accuracy does?

For each dataset, every real backbone available offline (MobileNetV2 1.0 at
96/128/160/224 px, MobileNet 0.25 at 128/224, the TF Hub MobileNetV2 feature
vector) plus the ranking's random-initialised reference is

* scored by `kerastl.rank_backbones` on the labelled images (training +
  validation), with LogME and with the linear probe (one feature pass: the
  probe reuses the LogME call's feature cache);
* fitted with `kerastl.fit(recipe=--recipe)` (default ``"auto"``, fit's own
  default: the closed-form head, then a short fine-tune kept only if it wins
  on validation) on the same images (every choice
  on them: the head's strength by cross-validation, stages on validation),
  with its own fresh feature cache, and evaluated on the dataset's held-out
  test folder, which nothing saw before.

Reported per dataset: Kendall tau between each score and the test accuracy,
the reference's place in both orders, and the cost of the ranking vs. the
sum of the fits' wall times. Also the KerasHub path (a tiny random-weight
ResNet preset: save_to_preset -> build -> fit -> export) is timed.

Honest protocol: labelled images are ``--per-class`` training images plus a
quarter as many validation images per class, drawn with ``--seed`` from the
dataset's train folder; the test split is the dataset's own validation folder.

Usage:
  KERASTL_ASSETS=../shared/assets python benchmarks/rank_benchmark.py \
      --datasets flowers_kaggle_227,cats_and_dogs_filtered --per-class 40 \
      --results benchmarks/results/rank_benchmark.jsonl
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

from _common import append_record, seed_keras_home
from recipe_sweep import DATASETS, load_folder, split

REPO = Path(__file__).resolve().parents[1]
LOAD_SIZE = 224


def _assets() -> Path:
    return Path(os.environ.get("KERASTL_ASSETS", REPO.parent / "shared" / "assets")).resolve()


def candidates(assets: Path) -> list[str]:
    hub = assets / "hub" / "mobilenet_v2_100_224_feature_vector"
    return ["mobilenet_v2@96", "mobilenet_v2@128", "mobilenet_v2@160", "mobilenet_v2@224",
            "mobilenet(alpha=0.25)@128", "mobilenet(alpha=0.25)@224", f"hub:{hub}"]


def _resize(x: np.ndarray, size: int) -> np.ndarray:
    import tensorflow as tf

    x = x.astype("float32")
    if x.shape[1] == size:
        return x
    return np.concatenate([tf.image.resize(x[i:i + 64], (size, size)).numpy()
                           for i in range(0, len(x), 64)])


def _fit_one(candidate, arrays, num_classes, recipe, seed) -> dict:
    import keras

    import kerastl

    x, y, tr, va, test_x, test_y = arrays
    size = int(candidate.image_size)
    start = time.perf_counter()
    keras.utils.set_random_seed(seed)  # the reference: the ranking's random weights
    model = kerastl.build(candidate.backbone, num_classes, input_shape=size,
                          weights=candidate.weights,
                          backbone_kwargs=candidate.backbone_kwargs or None)
    xs = _resize(x, size)
    report = kerastl.fit(model, (xs[tr], y[tr]), (xs[va], y[va]), recipe=recipe, seed=seed,
                         verbose=0, feature_cache=kerastl.training.FeatureCache())
    fit_seconds = time.perf_counter() - start
    probs = model.predict(_resize(test_x, size), batch_size=64, verbose=0)
    return {"test_accuracy": float((probs.argmax(axis=1) == test_y).mean()),
            "fit_seconds": fit_seconds, "recipe": report.recipe,
            "kept_stage": report.stages[report.best_stage].name
            if report.best_stage is not None else None,
            "val_accuracy": report.best.get("val_accuracy")}


def _kendall(a, b) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b)[0])


def emit(record: dict, args) -> None:
    """Prints one JSON line and appends it to --results (partial runs keep their rows)."""
    if args.results:
        append_record(args.results, record)
    else:
        print(json.dumps(record), flush=True)


def run_dataset(name: str, assets: Path, args) -> list[dict]:
    from kerastl.ranking import Candidate, rank_backbones
    from kerastl.training import FeatureCache

    train_dir, test_dir = DATASETS[name]
    root = assets / "datasets" / name
    x, y, classes = load_folder(root / train_dir, LOAD_SIZE)
    test_x, test_y, _ = load_folder(root / test_dir, LOAD_SIZE)
    tr, va = split(y, args.per_class, args.seed)
    if args.max_test:  # smoke runs: a seeded subset of the test folder
        keep = np.random.default_rng(args.seed).permutation(len(test_y))[: args.max_test]
        test_x, test_y = test_x[keep], test_y[keep]
    data = _datasets(x, y, (tr, va))
    cache = FeatureCache()
    rankings = {}
    for metric in args.metrics:
        start = time.perf_counter()
        rankings[metric] = rank_backbones(data, args.candidates or candidates(assets),
                                          metric=metric,
                                          feature_cache=cache, seed=args.seed)
        rankings[metric].wall = time.perf_counter() - start
        print(rankings[metric], flush=True)
    first = rankings[args.metrics[0]]
    rows, items = [], {r.name: r for r in first.rows}
    for row in first.rows:
        parsed = Candidate.parse(row.name.replace(" (random init)", ""))
        cand = Candidate(parsed.backbone, row.image_size, parsed.backbone_kwargs,
                         None if row.reference else "imagenet")
        fit = _fit_one(cand, (x, y, tr, va, test_x, test_y), len(classes), args.recipe,
                       args.seed)
        out = {"dataset": name, "candidate": row.name, "image_size": row.image_size,
               "reference": row.reference, "feature_seconds": items[row.name].feature_seconds,
               "num_params": row.num_params, "num_labelled": int(len(tr) + len(va)),
               "num_test": int(len(test_y)), **fit}
        for metric, ranking in rankings.items():
            out[metric] = next(r.score for r in ranking.rows if r.name == row.name)
        emit(out, args)
        rows.append(out)
    summary = {"dataset": name, "summary": True, "recipe": args.recipe,
               "ranking_seconds": {m: r.wall for m, r in rankings.items()},
               "fit_seconds_total": sum(r["fit_seconds"] for r in rows)}
    accuracy = [r["test_accuracy"] for r in rows]
    for metric in rankings:
        scores = [r[metric] for r in rows]
        summary[f"kendall_tau_{metric}"] = _kendall(scores, accuracy)
        order = sorted(rows, key=lambda r: -r[metric])
        summary[f"reference_rank_{metric}"] = 1 + [r["reference"] for r in order].index(True)
    by_acc = sorted(rows, key=lambda r: -r["test_accuracy"])
    summary["reference_rank_accuracy"] = 1 + [r["reference"] for r in by_acc].index(True)
    summary["num_candidates"] = len(rows)
    summary["cost_ratio"] = summary["ranking_seconds"][args.metrics[0]] / summary[
        "fit_seconds_total"]
    for k in args.rank_per_class:
        summary[f"sample_{k}"] = _sampled(x, y, tr, va, k, rows, summary, assets, args)
    emit(summary, args)
    return rows + [summary]


def _datasets(x, y, splits) -> tuple:
    """``(images, labels)`` batches of each index array in `splits`."""
    import tensorflow as tf

    return tuple(tf.data.Dataset.from_tensor_slices((x[i].astype("float32"), y[i])).batch(32)
                 for i in splits)


def _first_per_class(indices, labels, k) -> np.ndarray:
    """The first `k` of `indices` of each class (the split's own seeded order)."""
    return np.concatenate([indices[labels[indices] == c][:k] for c in np.unique(labels)])


def _sampled(x, y, tr, va, k, rows, summary, assets, args) -> dict:
    """Ranks on `k` training (+ k/4 validation) images per class, a fresh cache: tau, cost."""
    from kerastl.ranking import rank_backbones
    from kerastl.training import FeatureCache

    picked = (_first_per_class(tr, y, k), _first_per_class(va, y, max(1, round(k / 4))))
    data = _datasets(x, y, picked)
    metric = args.metrics[0]
    start = time.perf_counter()
    ranking = rank_backbones(data, args.candidates or candidates(assets), metric=metric,
                             feature_cache=FeatureCache(), seed=args.seed)
    seconds = time.perf_counter() - start
    print(ranking, flush=True)
    scores = {r.name: r.score for r in ranking.rows}
    reference = next(r for r in ranking.rows if r.reference)
    # The reference is the random-init copy of the sample's best candidate: matched to the
    # fitted reference row by role when the sample's best is another architecture.
    sample_scores = [scores.get(r["candidate"], reference.score if r["reference"] else None)
                     for r in rows]
    accuracy = [r["test_accuracy"] for r in rows]
    order = sorted(zip(sample_scores, rows), key=lambda item: -item[0])
    return {"per_class": k, "num_labelled": int(sum(len(i) for i in picked)),
            "metric": metric, "ranking_seconds": seconds,
            "cost_ratio": seconds / summary["fit_seconds_total"],
            "kendall_tau": _kendall(sample_scores, accuracy),
            "reference": reference.name,
            "reference_rank": 1 + [r["reference"] for _, r in order].index(True)}


def kerashub_path(args) -> dict:
    """Times a tiny random-weight KerasHub ResNet preset: save -> build -> fit -> export."""
    import keras_hub

    import kerastl

    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        keras_hub.models.ResNetBackbone(
            input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
            stackwise_num_blocks=[2, 2], stackwise_num_strides=[1, 2], block_type="basic_block",
            use_pre_activation=False, image_shape=(None, None, 3)).save_to_preset(f"{tmp}/p")
        keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255).save_to_preset(
            f"{tmp}/p")
        times["save_preset_s"] = time.perf_counter() - start
        start = time.perf_counter()
        model = kerastl.build(f"kerashub:{tmp}/p", 2, trainable_blocks=1)
        times["build_s"] = time.perf_counter() - start
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
        labels = np.arange(16) % 2
        start = time.perf_counter()
        kerastl.fit(model, (images, labels), (images, labels), recipe="fine_tune", epochs=1,
                    trainable_blocks=1, verbose=0)
        times["fit_s"] = time.perf_counter() - start
        start = time.perf_counter()
        kerastl.export(model, f"{tmp}/export", formats=("saved_model", "tflite"),
                       quantization=("float32",), verbose=0)
        times["export_s"] = time.perf_counter() - start
    out = {"kerashub": "tiny random-weight ResNet preset", **times}
    emit(out, args)
    return out


def table(results: list[dict]) -> str:
    lines = ["dataset  candidate  px  logme  probe  test acc  kept recipe  fit s  features s"]
    for r in results:
        if r.get("summary") or "kerashub" in r:
            continue
        lines.append(f"{r['dataset']}  {r['candidate']}  {r['image_size']}  "
                     f"{r.get('logme', float('nan')):.4f}  "
                     f"{r.get('linear_probe', float('nan')):.4f}  {r['test_accuracy']:.4f}  "
                     f"{r['recipe']}:{r.get('kept_stage')}  {r['fit_seconds']:.1f}  {r['feature_seconds']:.1f}")
    for r in results:
        if r.get("summary"):
            lines.append(json.dumps(r))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="flowers_kaggle_227,cats_and_dogs_filtered")
    parser.add_argument("--per-class", type=lambda v: v if v == "all" else int(v), default=40,
                        help="training images per class, or all (the train folder split "
                             "80:20 into training and validation images)")
    parser.add_argument("--metrics", default="logme,linear_probe")
    parser.add_argument("--recipe", default="auto",
                        help="kerastl.fit recipe of the fits (default: fit's own, auto)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rank-per-class", default="",
                        help="Also rank on the first K training (+K/4 validation) images per "
                             "class of the labelled set, comma-separated Ks (a cheaper "
                             "ranking; the fits keep --per-class)")
    parser.add_argument("--max-test", type=int, default=0, help="0: the whole test folder")
    parser.add_argument("--no-kerashub", action="store_true")
    parser.add_argument("--candidates", default=None,
                        help="comma-separated (default: every real backbone available offline)")
    parser.add_argument("--results", default=None)
    args = parser.parse_args(argv)
    args.metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    args.rank_per_class = [int(k) for k in args.rank_per_class.split(",") if k.strip()]
    if args.candidates:
        from kerastl.ranking import split_candidates

        args.candidates = split_candidates(args.candidates)
    assets = _assets()
    seed_keras_home(assets)
    results = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        results.extend(run_dataset(name, assets, args))
    if not args.no_kerashub:
        results.append(kerashub_path(args))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
