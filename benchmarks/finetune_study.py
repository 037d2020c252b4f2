"""Which rule makes `kerastl.fit`'s fine-tuning stage safer? One trajectory, many rules.

`kerastl.fit(recipe="auto")` fits the closed-form head, then fine-tunes the
top 4 blocks (6 epochs on the cached frozen prefix) and keeps the
fine-tuning only when it beats the head on the validation images by at
least 2 of them; a kept head is refitted on training + validation images.
This study runs that fit once per point (the recipe sweep's subsets:
`recipe_sweep.split`, same seeds) and, from its single fine-tuning
trajectory, scores every variant below on the validation images (the only
split any decision uses) and on the test split (the dataset's separate
validation folder, used only to report):

  head         the head fitted on the training images (the stage's start)
  head_refit   the same strength refitted on training + validation images
  ft           the fine-tuning stage's best validation epoch (what fit keeps)
  ft_last      its last epoch
  wise         0.5 * (head weights + ft weights), every trainable variable
               (WiSE-FT, Wortsman et al. 2022: a fixed alpha, no extra choice)
  wise_last    0.5 * (head weights + ft_last weights)
  ema          exponential moving average of the weights over the training
               steps at Keras's default ``ema_momentum=0.99`` (what
               ``use_ema=True`` would leave after the last step)
  ema_2ep      the same with a horizon of two epochs whatever the data size:
               momentum ``1 - 1 / (2 * steps_per_epoch)``
  *_tta        the same weights, predictions averaged with the horizontally
               flipped image's

and, per rule, what ``auto`` returns under it: the variant when it beats
the head on validation by >= 2 images (the same margin as
`kerastl.fit`), else ``head_refit``. The ``auto_*_tta`` rules compare and
predict with flip averaging throughout (head included); ``auto_headtta``
flip-averages the head only: the plain fine-tuning must beat the
flip-averaged head by >= 2 validation images, else ``head_refit_tta``.

A second table compares keep rules for the plain fine-tuning from each
point's paired validation counts (``g``: validation images the fine-tuning
gets right and the head wrong, ``l``: the other way round), at the best and
at the last epoch: ``margin2`` (``g - l >= 2``, `kerastl.fit`'s rule),
``margin2_loss`` (and a lower validation log-loss than the head's),
``sign_z1`` / ``sign_z1.64`` (``g - l >= max(2, z * sqrt(g + l))``: a sign
test on the images where the two disagree).

The trajectory is recorded through `kerastl.fit`'s public ``callbacks``
hook (on a cached stage the callback's model is the trained top part) and
scored on activations of the frozen prefix computed once per dataset with
`kerastl.training.graph.segment` (the prefix is the same pretrained
weights at every point).

Usage (the README's runs):
  KERASTL_ASSETS=../shared/assets python benchmarks/finetune_study.py \
      --datasets cats_and_dogs_filtered --sizes 25,50 --seeds 0-5
  KERASTL_ASSETS=../shared/assets python benchmarks/finetune_study.py \
      --datasets cats_and_dogs_filtered --sizes 100,all --seeds 0-2
  KERASTL_ASSETS=../shared/assets python benchmarks/finetune_study.py \
      --datasets flowers_kaggle_227 --sizes 50,100,all --seeds 0-5

Points already in --results are skipped (run it in parts). Prints one JSON
line per point and a table of mean ± std test accuracy per rule.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

from recipe_sweep import DATASETS, REPO, _assets, _probe_cv, load_folder, split
from _common import append_record, read_records, seed_keras_home

DEPTH = 4  # kerastl.fit's default unfreeze depth (kerastl.training.recipes)
# The trajectory is the plain fine-tuning: every variant is made from it here.
PLAIN = {"fine_tune_interpolation": 1.0}
VARIANTS = ("ft", "ft_last", "wise", "wise_last", "ema", "ema_2ep")
TABLE = ("probe_cv", "head_refit", "head_refit_tta", "ft", "ft_tta", "wise", "ema", "ema_2ep",
         "auto", "auto_wise", "auto_ema", "auto_ema_2ep", "auto_tta", "auto_headtta")
KEPT = ("auto", "auto_wise", "auto_ema", "auto_ema_2ep", "auto_tta", "auto_headtta")


def _recorder(keras, steps_per_epoch):
    class Recorder(keras.callbacks.Callback):
        """Weights at the start, at every epoch's end, and their moving averages."""

        def on_train_begin(self, logs=None):
            self.start = [np.array(w) for w in self.model.get_weights()]
            self.trainable = [i for i, v in enumerate(self.model.weights) if v.trainable]
            self.epochs, self.steps = [], 0
            self.ema = {"ema": None, "ema_2ep": None}
            self.momentum = {"ema": 0.99, "ema_2ep": 1.0 - 1.0 / (2.0 * steps_per_epoch)}
            self.snapshots = {"ema": [], "ema_2ep": []}

        def on_train_batch_end(self, batch, logs=None):
            weights = self.model.get_weights()
            self.steps += 1
            for name, average in self.ema.items():
                m = self.momentum[name]
                if average is None:  # first step: the average is the weights (as Keras)
                    self.ema[name] = [np.array(w, "float64") for w in weights]
                    continue
                for a, w in zip(average, weights):
                    a *= m
                    a += (1.0 - m) * w

        def on_epoch_end(self, epoch, logs=None):
            self.epochs.append([np.array(w) for w in self.model.get_weights()])
            for name, average in self.ema.items():
                self.snapshots[name].append([a.astype("float32") for a in average])

    return Recorder()


def _mix(a, b, alpha, trainable):
    """alpha * b + (1 - alpha) * a on the trainable variables (the others are b's)."""
    out = [np.array(w) for w in b]
    for i in trainable:
        out[i] = ((1.0 - alpha) * a[i] + alpha * b[i]).astype(b[i].dtype)
    return out


def _predict(model, weights, acts):
    model.set_weights(weights)
    return [model.predict(a, batch_size=64, verbose=0) for a in acts]


def _right(probs, labels):
    """Per image: is the prediction right (softmax argmax, or sigmoid > 0.5)."""
    pred = probs.argmax(1) if probs.shape[1] > 1 else (probs[:, 0] > 0.5).astype(int)
    return pred == labels


def _correct(probs, labels) -> int:
    return int(_right(probs, labels).sum())


def _point(kerastl, keras, data, size, seed, px) -> dict:
    x, y, names, act, act_flip, test_act, test_flip, feats, test_feats, test_y = data
    tr, va = split(y, size, seed)
    k = len(names)
    model = kerastl.build("mobilenet_v2", k, input_shape=px)
    rec = _recorder(keras, math.ceil(len(tr) / 32))  # kerastl.fit's batch_size=32
    start = time.perf_counter()
    report = kerastl.fit(model, (x[tr].astype("float32"), y[tr]),
                         (x[va].astype("float32"), y[va]), seed=seed, verbose=0,
                         callbacks=[rec], **PLAIN)
    seconds = time.perf_counter() - start
    head, tune = report.stages
    if tune.trainable_blocks != DEPTH or tune.cached != "prefix":
        raise RuntimeError(f"unexpected fine-tuning stage: {tune.trainable_blocks} blocks, "
                           f"cached {tune.cached}")
    info = kerastl.model_info(model)
    suffix = rec.model  # the trained top part: prefix activations -> predictions
    best = tune.best_epoch
    weights = {"head": rec.start, "ft": rec.epochs[best], "ft_last": rec.epochs[-1],
               "wise": _mix(rec.start, rec.epochs[best], 0.5, rec.trainable),
               "wise_last": _mix(rec.start, rec.epochs[-1], 0.5, rec.trainable),
               "ema": rec.snapshots["ema"][-1], "ema_2ep": rec.snapshots["ema_2ep"][-1]}
    for alpha in (0.25, 0.75):
        weights[f"wise{alpha:g}"] = _mix(rec.start, rec.epochs[best], alpha, rec.trainable)
    n_val, n_test = len(va), len(test_y)
    out = {"n_train": len(tr), "n_val": n_val, "n_test": n_test, "seconds": seconds,
           "best_epoch": best, "epochs_run": tune.epochs_run, "fit_best_stage": report.best_stage,
           "fit_val_head": head.best.get("val_accuracy"),
           "fit_val_ft": tune.best.get("val_accuracy"),
           "ema_2ep_momentum": rec.momentum["ema_2ep"], "steps": rec.steps}
    val, test, val_probs = {}, {}, {}
    for name, w in weights.items():
        pv, pvf, pt, ptf = _predict(suffix, w, [act[va], act_flip[va], test_act, test_flip])
        val[name], test[name] = _correct(pv, y[va]), _correct(pt, test_y)
        val_probs[name] = pv
        val[name + "_tta"] = _correct((pv + pvf) / 2, y[va])
        test[name + "_tta"] = _correct((pt + ptf) / 2, test_y)
    both = np.concatenate([tr, va])
    kernel, bias = kerastl.training.linear_head.solve_linear(
        info.task, info.num_outputs, feats[0][both], y[both], l2=head.l2)
    logits = [f @ kernel + bias for f in (test_feats[0], test_feats[1])]
    probs = [_softmax(z, info.task) for z in logits]
    test["head_refit"] = _correct(probs[0], test_y)
    test["head_refit_tta"] = _correct((probs[0] + probs[1]) / 2, test_y)
    for variant in VARIANTS:
        for tta in ("", "_tta"):
            keep = val[variant + tta] - val["head" + tta] >= 2
            rule = "auto" + ("" if variant == "ft" else "_" + variant) + tta
            out[f"{rule}_kept"] = bool(keep)
            test[rule] = test[variant + tta] if keep else test["head_refit" + tta]
    # The study's reconstruction of kerastl.fit's own decision must match it.
    out["matches_fit"] = bool(out["auto_kept"] == (report.best_stage == 1)
                              and val["head"] == round(head.best["val_accuracy"] * n_val)
                              and val["ft"] == round(tune.best["val_accuracy"] * n_val))
    out.update(_paired(val_probs, y[va]))
    probe = _probe_cv(feats[0], y, tr, va, test_feats[0], test_y)
    out.update({f"val_{n}": v / n_val for n, v in val.items()})
    out.update({n: v / n_test for n, v in test.items()})
    out["probe_cv"] = probe["test_accuracy"]
    return out


def _paired(val_probs, labels) -> dict:
    """Per-image comparison of the fine-tuning with the head on the validation images.

    ``gain_<v>`` / ``loss_<v>``: images the variant gets right and the head
    wrong / the other way round (what a sign test decides on);
    ``val_logloss_<v>``: the mean validation log-loss.
    """
    def logloss(probs):
        if probs.shape[1] == 1:
            p = np.where(labels == 1, probs[:, 0], 1.0 - probs[:, 0])
        else:
            p = probs[np.arange(len(labels)), labels]
        return float(-np.log(np.clip(p, 1e-7, 1.0)).mean())

    head = _right(val_probs["head"], labels)
    out = {"val_logloss_head": logloss(val_probs["head"])}
    for name in ("ft", "ft_last"):
        other = _right(val_probs[name], labels)
        out.update({f"gain_{name}": int((other & ~head).sum()),
                    f"loss_{name}": int((head & ~other).sum()),
                    f"val_logloss_{name}": logloss(val_probs[name])})
    return out


def _softmax(z, task):
    if task == "multiclass":
        z = z - z.max(1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-z))


def _dataset(kerastl, dataset, px):
    from kerastl.training import graph

    train_dir, test_dir = (_assets() / "datasets" / dataset / d for d in DATASETS[dataset])
    x, y, names = load_folder(train_dir, px)
    test_x, test_y, _ = load_folder(test_dir, px)
    base = kerastl.build("mobilenet_v2", len(names), input_shape=px)
    cut = graph.prefix_cut(base, kerastl.get_blocks(base), DEPTH)
    prefix = graph.segment(base, None, cut)
    pool = graph.segment(base, cut, graph.pooled_cut(base))

    def acts(images):
        return prefix.predict(images.astype("float32"), batch_size=64, verbose=0)

    act, act_flip = acts(x), acts(x[:, :, ::-1])
    test_act, test_flip = acts(test_x), acts(test_x[:, :, ::-1])
    pooled = [pool.predict(a, batch_size=64, verbose=0) for a in (act, act_flip)]
    test_pooled = [pool.predict(a, batch_size=64, verbose=0) for a in (test_act, test_flip)]
    return x, y, names, act, act_flip, test_act, test_flip, pooled, test_pooled, test_y


def _seeds(text):
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]


def _head_tta_rule(r) -> dict:
    """``auto_headtta`` from a point's record (validation counts decide, as in `_point`)."""
    n = r["n_val"]
    keep = round(r["val_ft"] * n) - round(r["val_head_tta"] * n) >= 2
    return {"auto_headtta": r["ft"] if keep else r["head_refit_tta"],
            "auto_headtta_kept": keep}


# Keep rules for the plain fine-tuning, from a point's paired validation counts:
# (variant kept, test when kept). ``g``/``l``: validation images the variant gets
# right and the head wrong / the other way round.
RULES = {
    "margin2": lambda r, v, g, l: g - l >= 2,  # kerastl.fit's margin
    "margin2_loss": lambda r, v, g, l: (g - l >= 2
                                        and r[f"val_logloss_{v}"] < r["val_logloss_head"]),
    "sign_z1": lambda r, v, g, l: g - l >= max(2.0, 1.0 * math.sqrt(g + l)),
    "sign_z1.64": lambda r, v, g, l: g - l >= max(2.0, 1.645 * math.sqrt(g + l)),
}


def _rules(r) -> dict:
    """What ``auto`` returns under each keep rule of `RULES` (best epoch and last epoch)."""
    out = {}
    for name, rule in RULES.items():
        for variant, suffix in (("ft", ""), ("ft_last", "_last")):
            if f"gain_{variant}" not in r:
                continue
            keep = rule(r, variant, r[f"gain_{variant}"], r[f"loss_{variant}"])
            out[f"{name}{suffix}"] = r[variant] if keep else r["head_refit"]
            out[f"{name}{suffix}_kept"] = bool(keep)
    return out


def _mean_std(rows, column) -> str:
    values = [r[column] for r in rows]
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def _rules_table(records):
    groups = collections.defaultdict(list)
    for r in records:
        if "gain_ft" in r:
            groups[r["dataset"], str(r["size"])].append(dict(r, **_rules(r)))
    names = [f"{n}{s}" for n in RULES for s in ("", "_last")]
    lines = ["| dataset | per class | seeds | probe_cv | head_refit | ft | "
             + " | ".join(names) + " |", "|---" * (len(names) + 6) + "|"]
    for (dataset, size), rows in groups.items():
        def cell(c, kept=False):
            return _mean_std(rows, c) + (f" ({sum(r[c + '_kept'] for r in rows)})" if kept else "")
        lines.append(f"| {dataset} | {size} | {len(rows)} | " + " | ".join(
            [cell("probe_cv"), cell("head_refit"), cell("ft")] + [cell(n, True) for n in names])
            + " |")
    return "\n".join(lines)


def _table(records):
    groups = collections.defaultdict(list)
    for r in records:
        groups[r["dataset"], str(r["size"])].append(dict(r, **_head_tta_rule(r)))
    lines = ["| dataset | per class | seeds | " + " | ".join(TABLE) + " | kept: "
             + " / ".join(KEPT) + " |", "|---" * (len(TABLE) + 4) + "|"]
    for (dataset, size), rows in groups.items():
        cells = [_mean_std(rows, c) for c in TABLE]
        kept = " / ".join(str(sum(r[f"{rule}_kept"] for r in rows)) for rule in KEPT)
        lines.append(f"| {dataset} | {size} | {len(rows)} | " + " | ".join(cells)
                     + f" | {kept} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--image-size", type=int, default=160)
    parser.add_argument("--sizes", default="25,50")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--results", default=str(REPO / "benchmarks" / "results"
                                                 / "finetune_study.jsonl"))
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new point after this many minutes")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args(argv)
    results = Path(args.results)
    done = read_records(results)
    if args.table_only:
        print(_table(done))
        print(_rules_table(done))
        return 0
    seed_keras_home(_assets())
    import keras

    import kerastl
    import kerastl.training.linear_head  # noqa: F401 (solve_linear, for the refit)

    began = time.perf_counter()
    seen = {(r["dataset"], r["image_size"], str(r["size"]), r["seed"]) for r in done}
    sizes = [s if s == "all" else int(s) for s in args.sizes.split(",")]
    for dataset in args.datasets.split(","):
        todo = [(s, seed) for s in sizes for seed in _seeds(args.seeds)
                if (dataset, args.image_size, str(s), seed) not in seen]
        if not todo:
            continue
        data = _dataset(kerastl, dataset, args.image_size)
        for size, seed in todo:
            if args.max_minutes and (time.perf_counter() - began) / 60 > args.max_minutes:
                print(_table(done))
                return 0
            load = os.getloadavg()[0]
            record = {"dataset": dataset, "image_size": args.image_size, "size": size,
                      "seed": seed, "load_before": load}
            record.update(_point(kerastl, keras, data, size, seed, args.image_size))
            append_record(results, record)
            done.append(record)
    print(_table(done))
    print(_rules_table(done))
    return 0


if __name__ == "__main__":
    sys.exit(main())
