"""Parameter-efficient fine-tuning (kerastl.peft) against head-only and block fine-tuning.

Honest protocol: per dataset the labelled images are the train folder only,
split 80:20 per class (seed 0) into training and validation images; every
choice (the head's L2 strength, the best epoch, whether the fine-tuning or
PEFT stage is kept over the head) is made on those. Test accuracy is on the
dataset's separate validation folder, used as the test split: nothing is
chosen on it. MobileNetV2 with ImageNet weights, 224 px, kerastl defaults
(6 epochs for the second stage, learning rate 1e-3).

Methods (each a fresh model; one FeatureCache per dataset, so the frozen
bottom blocks run once):
  head         recipe="feature_extraction" (closed-form head)
  top4         kerastl's default two_stage: head, then the top 4 blocks
  top1, top2   the same with the top 1 / 2 blocks (which blocks a full update needs)
  full         two_stage with trainable_blocks="all" (images through the whole
               network: expensive on a CPU, off by default)
  lora2/4/8/16 peft=PeftConfig("lora", rank=r, blocks=B): every 1x1 convolution of
               the top B blocks (default B=4, --lora-blocks)
  bitfit       peft="bitfit" on the top B blocks (MobileNetV2's convolutions have no
               bias: the BatchNormalization offsets)
  bn_affine    peft="bn_affine" on the top B blocks
  lora8_dw     lora8 plus the depthwise kernels of the same blocks trained in full:
               an upper bound of what any low-rank depthwise update could add
               (a rank-r update of a k x k x C depthwise kernel is a subset of it)

--validation none fits every method on the training images alone (no
validation data: nothing judges the second stage, so a row is the fine-tuning
or PEFT stage as trained, at its last epoch, on top of a head whose strength
k-fold cross-validation on the training images chose). The validation images
are then unused. This measures what each method itself reaches, which the
keep rule hides when it restores the head.

Multi-task (--multitask): flowers + cats/dogs on one MobileNetV2
(kerastl.build(tasks=...), kerastl.multitask.fit with the top --mt-blocks
blocks shared and trained, 0 = heads only; equal loss weights, 10 epochs,
early stopping on the mean validation accuracy), tested per task on each
test split, against the two single-task models (their rows, e.g. top4: the
kerastl default). Sizes: the multi-task float32 .tflite written by
kerastl.multitask.export against two single-task float32 .tflite files
written by kerastl.export of freshly built 5- and 2-class models (a file's
size does not depend on its trained values).

Columns: test accuracy, the kept stage, trained parameters (backbone part and
total with the head), per-task file bytes (PEFT: the real kerastl.peft.save
file; head / top4 / full: float32 bytes of their trained variables, no file
format overhead), backbone parameters, wall seconds, the process's peak RSS
after the row (monotonic: a row can only be attributed the growth it caused).

Usage:
  KERASTL_ASSETS=../shared/assets python benchmarks/peft_benchmark.py \
      --datasets flowers_kaggle_227,cats_and_dogs_filtered --image-size 224 \
      --methods head,top4,lora4,lora8,lora16,bitfit,bn_affine
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import markdown_table, mean_std, seed_keras_home
from recipe_sweep import DATASETS, _assets, load_folder, split

METHODS = ("head", "top1", "top2", "top4", "full", "lora2", "lora4", "lora8", "lora16",
           "bitfit", "bn_affine", "lora4_dw", "lora8_dw")
DEFAULT_METHODS = ("head", "top4", "lora4", "lora8", "lora16", "bitfit", "bn_affine")


def _fit_kwargs(method: str, lora_blocks: int):
    import kerastl.peft

    if method == "head":
        return {"recipe": "feature_extraction"}
    if method in ("top1", "top2", "top4"):
        return {"recipe": "two_stage", "trainable_blocks": int(method[3:])}
    if method == "full":
        return {"recipe": "two_stage", "trainable_blocks": "all"}
    if method.startswith("lora"):
        return {"peft": kerastl.peft.PeftConfig("lora", rank=int(method[4:].split("_")[0]),
                                                blocks=lora_blocks)}
    return {"peft": kerastl.peft.PeftConfig(method, blocks=lora_blocks)}


def _size(variables) -> int:
    return int(sum(int(np.prod(v.shape)) for v in variables))


def _trained(model, report, method: str, folder: Path):
    """(backbone params trained, total params trained, per-task bytes) of the kept stage."""
    import kerastl
    import kerastl.peft

    head = _size(kerastl.get_head(model).weights)
    if kerastl.peft.get_config(model) is not None:
        backbone = kerastl.peft.summarize(model).peft_params
        path = kerastl.peft.save(model, folder / f"{method}.peft.weights.h5")
        return backbone, backbone + head, path.stat().st_size
    kept = report.stages[report.best_stage]
    names = set(kept.trainable_block_names)
    backbone = sum(_size(layer.weights) for block in kerastl.get_blocks(model)
                   if block.name in names for layer in block.layers)
    return backbone, backbone + head, 4 * (backbone + head)


def _depthwise_layers(model) -> list:
    """The DepthwiseConv2D layers of the model's PEFT blocks (for lora8_dw)."""
    import keras

    import kerastl.peft
    from kerastl.peft.core import select_blocks

    config = kerastl.peft.get_config(model)
    return [layer for block in select_blocks(model, config.blocks) for layer in block.layers
            if isinstance(layer, keras.layers.DepthwiseConv2D)]


def _also_depthwise(original):
    """kerastl.peft's set_trainable, then the blocks' depthwise kernels trainable too."""
    def set_trainable(model):
        depth = original(model)
        for layer in _depthwise_layers(model):
            layer.trainable = True  # its one variable: the depthwise kernel
        return depth

    return set_trainable


def run_one(method, arrays, num_classes, size, cache, lora_blocks, folder, *,
            validation=True, backbone_learning_rate=None, seed=0):
    import kerastl
    import kerastl.peft.training as peft_training

    x, y, tr, va, test_x, test_y = arrays
    start = time.perf_counter()
    model = kerastl.build("mobilenet_v2", num_classes, input_shape=size)
    backbone_params = _size(kerastl.get_backbone(model).weights)
    original = peft_training.set_trainable
    if method.endswith("_dw"):
        peft_training.set_trainable = _also_depthwise(original)
    try:
        kwargs = _fit_kwargs(method, lora_blocks)
        if backbone_learning_rate is not None and method != "head":
            kwargs["backbone_learning_rate"] = backbone_learning_rate
        if not validation and method != "head":
            kwargs.setdefault("recipe", "two_stage")  # auto without validation: head only
        report = kerastl.fit(model, (x[tr].astype("float32"), y[tr]),
                             (x[va].astype("float32"), y[va]) if validation else None,
                             feature_cache=cache, seed=seed, verbose=0, **kwargs)
    finally:
        peft_training.set_trainable = original
    probs = model.predict(test_x.astype("float32"), batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    # Without validation data the validation images were not seen: they score the
    # model as trained, for a choice between settings (e.g. rates) made on them.
    holdout = None if validation else float(
        (model.predict(x[va].astype("float32"), batch_size=64, verbose=0).argmax(1)
         == y[va]).mean())
    backbone, total, file_bytes = _trained(model, report, method, folder)
    if method.endswith("_dw"):  # the adapter file lacks them: count their float32 bytes
        extra = _size([l.kernel for l in _depthwise_layers(model)])
        backbone, total, file_bytes = backbone + extra, total + extra, file_bytes + 4 * extra
    kept = report.stages[report.best_stage]
    return {"method": method + ("" if backbone_learning_rate is None or method == "head"
                                else f"@{backbone_learning_rate:g}"),
            "seed": seed, "validation": "used" if validation else "none",
            "holdout_accuracy": holdout,
            "backbone_learning_rate": backbone_learning_rate,
            "test_accuracy": float((probs.argmax(1) == test_y).mean()),
            "val_accuracy": report.best.get("val_accuracy"), "kept_stage": kept.name,
            "stages": [{"name": s.name, "val": s.best.get("val_accuracy"),
                        "epochs_run": s.epochs_run, "trained_variables": len(s.trainable_weights),
                        "trained_depthwise_kernels": sum(w.endswith("depthwise/kernel")
                                                         for w in s.trainable_weights)}
                       for s in report.stages],
            "trained_backbone_params": backbone, "trained_params": total,
            "backbone_params": backbone_params, "backbone_fraction": backbone / backbone_params,
            "file_bytes": file_bytes, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _summary_table(records) -> str:
    """Mean ± std over seeds per (dataset, method): test and held-out val accuracy."""
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["method"], r.get("validation", "used")), []).append(r)
    rows = [("dataset", "method", "validation", "seeds", "test acc", "held-out val",
             "backbone %", "seconds")]
    for (dataset, method, validation), group in groups.items():
        held = [r["holdout_accuracy"] for r in group if r.get("holdout_accuracy") is not None]
        rows.append((dataset, method, validation, str(len(group)),
                     mean_std([r["test_accuracy"] for r in group]),
                     mean_std(held) if held else "",
                     f"{100 * group[0]['backbone_fraction']:.2f}",
                     f"{np.mean([r['seconds'] for r in group]):.0f}"))
    return markdown_table(rows)


def _table(records) -> str:
    rows = [("dataset", "method", "validation", "test acc", "kept stage",
             "trained (backbone %)", "per-task bytes", "seconds", "peak RSS MB")]
    for r in records:
        rows.append((r["dataset"], r["method"], r.get("validation", "used"),
                     f"{r['test_accuracy']:.3f}"
                     + (f" (held-out val {r['holdout_accuracy']:.3f})"
                        if r.get("holdout_accuracy") is not None else ""), r["kept_stage"],
                     f"{r['trained_params']:,} ({100 * r['backbone_fraction']:.2f}%)",
                     f"{r['file_bytes']:,}", f"{r['seconds']:.0f}", f"{r['peak_rss_mb']:.0f}"))
    return markdown_table(rows)


TASK_NAMES = {"flowers_kaggle_227": "flowers", "cats_and_dogs_filtered": "pets"}


def _tflite_bytes(num_classes: int, size: int, folder: Path) -> tuple:
    """(float32 .tflite bytes, parameters) of a freshly built single-task MobileNetV2."""
    import kerastl

    model = kerastl.build("mobilenet_v2", num_classes, input_shape=size)
    report = kerastl.export(model, folder, formats=("tflite",), quantization=("float32",),
                            verbose=0)
    return report.artifact("model_float32.tflite").size_bytes, model.count_params()


def run_multitask(loaded: dict, size: int, blocks: int, folder: Path) -> dict:
    """One MobileNetV2 with a head per dataset (kerastl.multitask), tested per task."""
    import kerastl
    import kerastl.multitask

    start = time.perf_counter()
    tasks = {TASK_NAMES[d]: v["names"] for d, v in loaded.items()}
    model = kerastl.build("mobilenet_v2", tasks=tasks, input_shape=size)
    train = {TASK_NAMES[d]: (v["x"][v["tr"]].astype("float32"), v["y"][v["tr"]])
             for d, v in loaded.items()}
    val = {TASK_NAMES[d]: (v["x"][v["va"]].astype("float32"), v["y"][v["va"]])
           for d, v in loaded.items()}
    report = kerastl.multitask.fit(model, train, val, trainable_blocks=blocks, seed=0, verbose=0)
    test = {}
    for d, v in loaded.items():
        probs = model.predict(v["test_x"].astype("float32"), batch_size=64, verbose=0)
        test[TASK_NAMES[d]] = float((probs[TASK_NAMES[d]].argmax(1) == v["test_y"]).mean())
    seconds = time.perf_counter() - start
    first = next(iter(loaded.values()))["test_x"][:8].astype("float32")
    out = kerastl.multitask.export(model, folder / f"multitask_{blocks}", check_images=first)
    singles = {d: _tflite_bytes(len(v["names"]), size, folder / f"single_{d}")
               for d, v in loaded.items()}
    single_bytes = sum(b for b, _ in singles.values())
    single_params = sum(p for _, p in singles.values())
    return {"dataset": "+".join(TASK_NAMES[d] for d in loaded), "image_size": size,
            "method": f"multitask_top{blocks}", "trainable_blocks": blocks,
            "test_accuracy": test, "val_accuracy": {t: r["val_accuracy"]
                                                    for t, r in report.per_task().items()},
            "best_epoch": report.best_epoch, "cached": report.cached,
            "epochs_run": len(report.history.get("val_mean_accuracy", [])),
            "params": model.count_params(), "single_params": single_params,
            "tflite_bytes": out.artifacts["model_float32.tflite"],
            "single_tflite_bytes": single_bytes,
            "tflite_ratio": out.artifacts["model_float32.tflite"] / single_bytes,
            "max_abs_diff": out.max_abs_diff["model_float32.tflite"], "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _multitask_table(records) -> str:
    rows = [("tasks", "method", "test acc per task", "val acc per task", "params (two models)",
             "float32 .tflite bytes (two models, ratio)", "seconds", "peak RSS MB")]
    for r in records:
        rows.append((r["dataset"], r["method"],
                     ", ".join(f"{t} {v:.3f}" for t, v in r["test_accuracy"].items()),
                     ", ".join(f"{t} {v:.3f}" for t, v in r["val_accuracy"].items()),
                     f"{r['params']:,} ({r['single_params']:,})",
                     f"{r['tflite_bytes']:,} ({r['single_tflite_bytes']:,}, "
                     f"{r['tflite_ratio']:.2f}x)", f"{r['seconds']:.0f}",
                     f"{r['peak_rss_mb']:.0f}"))
    return markdown_table(rows)


def _grid(methods, rates, seeds):
    """(method, backbone rate, seed) rows; the head has no backbone rate (one row per seed)."""
    for method in methods:
        for rate in ([None] if method == "head" else rates):
            for seed in seeds:
                yield method, rate, seed


def _write(record, path) -> None:
    print(json.dumps(record), flush=True)
    if path:
        with path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                        help="comma-separated single-task methods ('' for none)")
    parser.add_argument("--lora-blocks", type=int, default=4)
    parser.add_argument("--multitask", action="store_true",
                        help="also the multi-task rows (one model for all --datasets)")
    parser.add_argument("--mt-blocks", default="4",
                        help="shared top blocks trained in the multi-task rows, e.g. 0,4")
    parser.add_argument("--per-class", default="all",
                        help="training images per class (smoke runs), or all (80:20 split)")
    parser.add_argument("--results", type=Path, default=None, help="append JSON lines here")
    parser.add_argument("--validation", choices=("used", "none"), default="used",
                        help="none: fit on the training images without validation data, so "
                             "nothing judges the second stage and the row is that stage as "
                             "trained (its last epoch; the head's strength by k-fold on the "
                             "training images)")
    parser.add_argument("--backbone-learning-rate", default=None,
                        help="peak rate of the second stage's backbone variables, or several "
                             "comma-separated (each a row per method and seed; default: "
                             "kerastl's); such a method is labelled @RATE")
    parser.add_argument("--seeds", default="0",
                        help="comma-separated fit seeds (weights, shuffling, augmentation) of "
                             "every single-task row; the 80:20 split stays seed 0")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    seeds = [int(s) for s in args.seeds.split(",")]
    rates = ([None] if args.backbone_learning_rate is None
             else [float(r) for r in args.backbone_learning_rate.split(",")])
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    assets = _assets()
    seed_keras_home(assets)
    from kerastl.training import FeatureCache

    per_class = args.per_class if args.per_class == "all" else int(args.per_class)
    records, mt_records, loaded = [], [], {}
    with tempfile.TemporaryDirectory(prefix="peft_bench_") as tmp:
        for dataset in args.datasets.split(","):
            train_dir, test_dir = DATASETS[dataset]
            root = assets / "datasets" / dataset
            x, y, names = load_folder(root / train_dir, args.image_size)
            test_x, test_y, _ = load_folder(root / test_dir, args.image_size)
            tr, va = split(y, per_class, 0)
            if args.multitask:
                loaded[dataset] = {"x": x, "y": y, "tr": tr, "va": va, "test_x": test_x,
                                   "test_y": test_y, "names": names}
            cache = FeatureCache()
            for method, rate, seed in _grid(methods, rates, seeds):
                record = {"dataset": dataset, "image_size": args.image_size,
                          "num_train": len(tr), "num_val": len(va), "num_test": len(test_y),
                          "lora_blocks": args.lora_blocks}
                record.update(run_one(method, (x, y, tr, va, test_x, test_y), len(names),
                                      args.image_size, cache, args.lora_blocks, Path(tmp),
                                      validation=args.validation == "used",
                                      backbone_learning_rate=rate, seed=seed))
                _write(record, args.results)
                records.append(record)
        for blocks in (int(b) for b in args.mt_blocks.split(",") if args.multitask):
            record = run_multitask(loaded, args.image_size, blocks, Path(tmp))
            _write(record, args.results)
            mt_records.append(record)
    if records:
        print(_table(records))
        print(_summary_table(records))
    if mt_records:
        print(_multitask_table(mt_records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
