"""Which shrunk covariance `kerastl.extend(method="slda")` should use: pooled or per class.

Reads the pooled MobileNetV2 features that ``fewshot_benchmark.py --stages features``
wrote (``--cache``) and compares two linear discriminants (class means, one shared
covariance, equal priors) fitted on the same training images:

pooled     `kerastl.fewshot.ClassStatistics`: the pooled within-class covariance
           shrunk towards a multiple of the identity by Ledoit-Wolf (what ``slda`` uses;
           exactly incremental from per-class counts, sums and one scatter matrix).
per_class  scikit-learn's ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")``
           estimator: each class's covariance shrunk by Ledoit-Wolf on standardized
           features, weighted by the class frequencies.

For each dataset, images per class and seed, the train folder is split per class into
20% validation images and training images (the first ``k`` of the rest, or all of
them); the validation accuracy is what a choice between the two may use, the accuracy
on the separate val/validation folder (test) is reported beside it.

Usage:
  python benchmarks/slda_shrinkage_study.py --cache /tmp/fewshot_features_224.npz
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from _common import markdown_table

DATASETS = {"flowers": 5, "cats_dogs": 2}


def per_class_covariance(x, y, num_classes):
    """The frequency-weighted mean of each class's Ledoit-Wolf covariance (standardized)."""
    from sklearn.covariance import ledoit_wolf

    total = np.zeros((x.shape[1], x.shape[1]))
    for c in range(num_classes):
        centred = x[y == c] - x[y == c].mean(axis=0)
        scale = centred.std(axis=0)
        scale[scale == 0] = 1.0
        shrunk = ledoit_wolf(centred / scale, assume_centered=True)[0]
        total += np.sum(y == c) * scale[:, None] * shrunk * scale[None, :]
    return total / len(y)


def accuracies(x, y, num_classes, evaluations):
    """``{estimator: [accuracy on each (features, labels) of evaluations]}``."""
    import kerastl.fewshot as fs

    stats = fs.ClassStatistics.from_features(x, y, [str(c) for c in range(num_classes)])
    means = stats.sums / stats.counts[:, None]
    out = {}
    for name, cov in (("pooled", stats.covariance()),
                      ("per_class", per_class_covariance(x, y, num_classes))):
        kernel = np.linalg.solve(cov, means.T)
        bias = -0.5 * np.sum(means.T * kernel, axis=0)
        out[name] = [float(np.mean((ex @ kernel + bias).argmax(axis=1) == ey))
                     for ex, ey in evaluations]
    return out


def split(y, num_classes, size, seed):
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in range(num_classes):
        rows = rng.permutation(np.flatnonzero(y == c))
        held = len(rows) // 5
        val += list(rows[:held])
        train += list(rows[held:] if size == "all" else rows[held:held + size])
    return np.array(train), np.array(val)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="/tmp/fewshot_features_224.npz")
    parser.add_argument("--sizes", default="5,10,25,all")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args(argv)
    arrays = np.load(args.cache, allow_pickle=False)
    rows = [("dataset", "per class", "seeds", "validation: pooled / per_class",
             "test: pooled / per_class", "per_class - pooled (val / test)")]
    for key, num_classes in DATASETS.items():
        x = arrays[f"{key}_train_x"].astype("float64")
        y = arrays[f"{key}_train_y"]
        test = (arrays[f"{key}_test_x"].astype("float64"), arrays[f"{key}_test_y"])
        for size in (s if s == "all" else int(s) for s in args.sizes.split(",")):
            runs = []
            for seed in range(args.seeds):
                tr, va = split(y, num_classes, size, seed)
                runs.append(accuracies(x[tr], y[tr], num_classes, [(x[va], y[va]), test]))
            pooled = 100 * np.array([r["pooled"] for r in runs])
            per_class = 100 * np.array([r["per_class"] for r in runs])
            diff = (per_class - pooled).mean(axis=0)
            record = {"dataset": key, "size": size, "seeds": args.seeds,
                      "pooled": pooled.mean(axis=0).round(2).tolist(),
                      "per_class": per_class.mean(axis=0).round(2).tolist(),
                      "per_class_minus_pooled": diff.round(2).tolist()}
            print(json.dumps(record), flush=True)
            rows.append((key, str(size), str(args.seeds),
                         " / ".join(f"{v:.1f}" for v in (pooled[:, 0].mean(),
                                                        per_class[:, 0].mean())),
                         " / ".join(f"{v:.1f}" for v in (pooled[:, 1].mean(),
                                                        per_class[:, 1].mean())),
                         f"{diff[0]:+.1f} / {diff[1]:+.1f}"))
    print(markdown_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
