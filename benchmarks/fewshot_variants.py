"""Prototype variants against the logistic probe, in the few-shot benchmark's episodes.

Reads the pooled MobileNetV2 features that ``fewshot_benchmark.py --stages features``
wrote (``--cache``) and runs, on the *same* episodes for every method (paired):

probe        the L2 logistic-regression probe (kerastl.training.linear_head.solve_linear),
             strength from {1e-3, 1e-2, 1e-1}, as in fewshot_benchmark.py.
prototypes   cosine prototypes (the kerastl.fewshot.build default).
power        SimpleShot / PT-style power transform: features ** 0.5 (the pooled
             ReLU6 features are >= 0), then cosine prototypes.
center=...   features centred before the cosine: by the support mean of the episode
             ("support", inductive), by the mean of its support + query features
             ("episode", transductive), or by the fixed mean of the train-folder
             features ("base"; in these datasets the train folder holds the same
             classes, so this mean is closer to the test classes than a base set of
             other classes would be).
mahalanobis  kerastl.fewshot.build(metric="mahalanobis"): centred, normalised features
             whitened by the support's Ledoit-Wolf-shrunk within-class covariance,
             Euclidean prototypes (a shared-covariance discriminant; nothing chosen).
             "mahalanobis refine": the same, then one transductive refinement step on
             the episode's queries (evaluate(transductive=True)).
refine       transductive soft k-means on the episode's queries
             (kerastl.fewshot.prototypes.refine_prototypes): steps from {1, 3, 10},
             scale from {10, 20, 50}.

Every choice (probe strength, refinement steps and scale) is made per dataset and shot
count on --choice-episodes episodes drawn from the train folder; the reported mean +- 95%
CI is over --episodes episodes drawn from the val/validation folder (seed --seed: the
episodes fewshot_benchmark.py draws). Also prints each variant's paired difference to the
probe (mean and 95% CI of the per-episode difference).

Usage:
  python benchmarks/fewshot_variants.py --cache /tmp/fewshot_features_224.npz
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time

import numpy as np

DATASETS = {"flowers": 5, "cats_dogs": 2}
L2_GRID = (1e-3, 1e-2, 1e-1)
REFINE_GRID = [{"steps": s, "scale": t} for s, t in itertools.product((1, 3, 10), (10, 20, 50))]
CENTERS = (None, "support", "episode", "base")


def _transform(xs, xq, *, power, center, base_mean):
    """The variant's feature transform of support `xs` and queries `xq`."""
    if power:
        xs, xq = np.sqrt(np.maximum(xs, 0.0)), np.sqrt(np.maximum(xq, 0.0))
    if center is None:
        return xs, xq
    mean = {"support": lambda: xs.mean(axis=0),
            "episode": lambda: np.concatenate([xs, xq]).mean(axis=0),
            "base": lambda: base_mean}[center]()
    return xs - mean, xq - mean


def _predict(xs, ys, xq, ways, variant, params, means):
    from kerastl.fewshot import prototypes as proto
    from kerastl.training.linear_head import solve_linear

    if variant["kind"] == "probe":
        kernel, bias = solve_linear("multiclass", ways, xs, ys, l2=params["l2"])
        return (xq @ kernel + bias).argmax(axis=1)
    if variant["kind"] == "mahalanobis":
        from kerastl.fewshot.episodes import classify_episode

        return classify_episode(xs, ys, xq, ways=ways, method="prototypes",
                                metric="mahalanobis", scale=0.5,
                                transductive=variant["name"].endswith("refine"))
    xs, xq = _transform(xs, xq, power=variant["power"], center=variant["center"],
                        base_mean=means["power" if variant["power"] else "raw"])
    p = proto.class_prototypes(xs, ys, ways)
    if variant["kind"] == "refine":
        p = proto.refine_prototypes(p, xs, ys, xq, metric="cosine", scale=params["scale"],
                                    steps=params["steps"])
    return (proto.normalize(xq) @ p.T).argmax(axis=1)


def _episodes(x, y, ways, shots, count, seed):
    from kerastl.fewshot.episodes import eligible_classes, sample_episode

    classes = eligible_classes(y, shots, 15, ways)
    by_class = {c: np.flatnonzero(y == c) for c in classes}
    rng = np.random.default_rng(seed)
    return [sample_episode(rng, by_class, classes, ways=ways, shots=shots, queries=15)
            for _ in range(count)]


def _accuracies(x, y, episodes, ways, variant, params, means):
    return np.array([np.mean(_predict(x[s], sy, x[q], ways, variant, params, means) == qy)
                     for s, sy, q, qy in episodes])


def variants():
    out = [{"name": "probe", "kind": "probe", "grid": [{"l2": v} for v in L2_GRID]}]
    for kind, power, center in itertools.product(("prototypes", "refine"), (False, True),
                                                 CENTERS):
        name = kind + (" power" if power else "") + (f" center={center}" if center else "")
        out.append({"name": name, "kind": kind, "power": power, "center": center,
                    "grid": REFINE_GRID if kind == "refine" else [{}]})
    out += [{"name": name, "kind": "mahalanobis", "grid": [{}]}
            for name in ("mahalanobis", "mahalanobis refine")]
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="/tmp/fewshot_features_224.npz")
    parser.add_argument("--shots", default="1,5,10")
    parser.add_argument("--datasets", default="flowers,cats_dogs")
    parser.add_argument("--episodes", type=int, default=600)
    parser.add_argument("--choice-episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default=None, help="comma-separated variant names")
    parser.add_argument("--kinds", default="prototypes,refine",
                        help="comma-separated kinds of variant: prototypes, refine, mahalanobis")
    args = parser.parse_args(argv)
    from kerastl.fewshot.episodes import mean_ci

    arrays = dict(np.load(args.cache))
    chosen = variants()
    if args.only:
        keep = set(args.only.split(",")) | {"probe"}
        chosen = [v for v in chosen if v["name"] in keep]
    kinds = set(args.kinds.split(",")) | {"probe"}
    chosen = [v for v in chosen if v["kind"] in kinds]
    rows = []
    for key in args.datasets.split(","):
        ways = DATASETS[key]
        tr_x, tr_y = arrays[f"{key}_train_x"], arrays[f"{key}_train_y"]
        te_x, te_y = arrays[f"{key}_test_x"], arrays[f"{key}_test_y"]
        means = {"raw": tr_x.mean(axis=0), "power": np.sqrt(np.maximum(tr_x, 0.0)).mean(axis=0)}
        for shots in (int(s) for s in args.shots.split(",")):
            train_eps = _episodes(tr_x, tr_y, ways, shots, args.choice_episodes, 1)
            test_eps = _episodes(te_x, te_y, ways, shots, args.episodes, args.seed)
            probe_acc = None
            for v in chosen:
                start = time.perf_counter()
                scores = [(_accuracies(tr_x, tr_y, train_eps, ways, v, g, means).mean(), i)
                          for i, g in enumerate(v["grid"])]
                train_mean, best = max(scores)
                params = v["grid"][best]
                acc = _accuracies(te_x, te_y, test_eps, ways, v, params, means)
                if v["kind"] == "probe":
                    probe_acc = acc
                mean, ci, _ = mean_ci(acc)
                diff, dci, _ = mean_ci(acc - probe_acc)
                row = {"dataset": key, "ways": ways, "shots": shots, "method": v["name"],
                       "chosen_on_train_episodes": params,
                       "train_episodes_mean": float(train_mean), "episodes": len(acc), "mean": mean,
                       "ci95": ci, "minus_probe": diff, "minus_probe_ci95": dci,
                       "seconds": round(time.perf_counter() - start, 1)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    print("\n| dataset | shots | method | chosen on train episodes | accuracy % | minus probe |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['dataset']} | {r['shots']} | {r['method']} | "
              f"{r['chosen_on_train_episodes'] or ''} | {100 * r['mean']:.1f} +- "
              f"{100 * r['ci95']:.1f} | {100 * r['minus_probe']:+.1f} +- "
              f"{100 * r['minus_probe_ci95']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
