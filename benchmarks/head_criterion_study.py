"""Which held-out criterion should choose the closed-form head's L2 strength?

`kerastl.fit` chooses the strength of its linear head by k-fold
cross-validation of the held-out **log-loss** (ties: the stronger strength).
scikit-learn's `LogisticRegressionCV(scoring="accuracy")` chooses by held-out
accuracy. This study measures, on the recipe sweep's subsets (same
`recipe_sweep.split`, same folds as `kerastl.training.linear_head`), the test
accuracy each rule leads to, the head refitted on training + validation
images at the chosen strength as `kerastl.fit` does:

  loss          mean held-out log-loss (kerastl's rule)
  loss_1se      the strongest strength within one standard error of the
                lowest mean loss (Hastie et al.'s one-standard-error rule)
  acc_strong    highest mean accuracy, ties to the stronger strength
                (LogisticRegressionCV's rule)
  acc_tieloss   highest mean accuracy, ties broken by the loss
  probe_cv      scikit-learn LogisticRegressionCV itself (recipe_sweep's probe)
  oracle        the best strength of the grid chosen on the test split (a
                ceiling, not a method)

The test split (the dataset's separate validation folder) is used only to
score. Features are the frozen MobileNetV2's pooled features at --image-size.

Usage:
  KERASTL_ASSETS=../shared/assets python benchmarks/head_criterion_study.py \
      --datasets cats_and_dogs_filtered,flowers_kaggle_227 --seeds 0-9

Prints one JSON line per (dataset, size, seed) and a table of means.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

import numpy as np

from recipe_sweep import DATASETS, _assets, _features, _probe_cv, load_folder, split
from _common import seed_keras_home

RULES = ("loss", "loss_1se", "acc_strong", "acc_tieloss", "probe_cv", "oracle")


def _cv_path(lh, x, y, k, seed):
    """Held-out loss and accuracy, (strengths, folds), over the whole grid."""
    targets = lh._targets("multiclass", y, k)
    fold, count = lh._folds("multiclass", targets, seed)
    grid = sorted(lh.L2_GRID, reverse=True)
    loss, acc = np.zeros((len(grid), count)), np.zeros((len(grid), count))
    for f in range(count):
        train, held = fold != f, fold == f
        theta = np.zeros(x.shape[1] * k + k)
        for i, l2 in enumerate(grid):
            theta = lh._solve_theta("multiclass", x[train], targets[train],
                                    np.ones(train.sum()), l2, theta)
            kernel, bias = lh._unpack(theta, x.shape[1], k)
            loss[i, f] = lh.evaluate_linear("multiclass", kernel, bias, x[held],
                                            targets[held], k)["loss"]
            acc[i, f] = ((x[held] @ kernel + bias).argmax(1) == y[held]).mean()
    return grid, loss, acc


def _choices(loss, acc) -> dict:
    """Index into the (strong -> weak) grid chosen by each rule."""
    mean_loss, mean_acc = loss.mean(1), acc.mean(1)
    low = mean_loss.argmin()
    se = loss.std(1, ddof=1)[low] / np.sqrt(loss.shape[1])
    best = np.flatnonzero(mean_acc == mean_acc.max())
    return {"loss": int(low),
            "loss_1se": int(np.flatnonzero(mean_loss <= mean_loss[low] + se)[0]),
            "acc_strong": int(best[0]),
            "acc_tieloss": int(best[mean_loss[best].argmin()])}


def _point(lh, f, y, test_f, test_y, size, seed) -> dict:
    k = int(y.max()) + 1
    train, val = split(y, size, seed)
    both = np.concatenate([train, val])
    grid, loss, acc = _cv_path(lh, f[both], y[both], k, seed)
    test, theta = [], np.zeros(f.shape[1] * k + k)
    targets = lh._targets("multiclass", y[both], k)
    for l2 in grid:  # the refit on training + validation images, as kerastl.fit does
        theta = lh._solve_theta("multiclass", f[both], targets, np.ones(len(both)), l2, theta)
        kernel, bias = lh._unpack(theta, f.shape[1], k)
        test.append(float(((test_f @ kernel + bias).argmax(1) == test_y).mean()))
    out = {rule: test[i] for rule, i in _choices(loss, acc).items()}
    out.update(probe_cv=_probe_cv(f, y, train, val, test_f, test_y)["test_accuracy"],
               oracle=max(test))
    return out


def _seeds(text):
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--sizes", default="5,10,25,50,100,all")
    parser.add_argument("--seeds", default="0-9")
    args = parser.parse_args(argv)
    seed_keras_home(_assets())
    from threadpoolctl import threadpool_limits

    from kerastl.training import linear_head as lh

    sizes = [s if s == "all" else int(s) for s in args.sizes.split(",")]
    table = collections.defaultdict(list)
    for dataset in args.datasets.split(","):
        train_dir, test_dir = (_assets() / "datasets" / dataset / d for d in DATASETS[dataset])
        x, y, names = load_folder(train_dir, args.image_size)
        test_x, test_y, _ = load_folder(test_dir, args.image_size)
        f = _features(x, args.image_size, len(names))
        test_f = _features(test_x, args.image_size, len(names))
        with threadpool_limits(limits=1, user_api="blas"):
            for size in sizes:
                for seed in _seeds(args.seeds):
                    row = _point(lh, f, y, test_f, test_y, size, seed)
                    print(json.dumps({"dataset": dataset, "size": size, "seed": seed, **row}),
                          flush=True)
                    table[dataset, size].append(row)
    print(f"{'dataset':<24}{'size':>5}{'seeds':>6}" + "".join(f"{r:>13}" for r in RULES))
    for (dataset, size), rows in table.items():
        print(f"{dataset:<24}{size!s:>5}{len(rows):>6}"
              + "".join(f"{np.mean([r[k] for r in rows]):7.3f}±{np.std([r[k] for r in rows]):.3f}"
                        for k in RULES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
