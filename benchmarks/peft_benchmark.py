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
  full         two_stage with trainable_blocks="all" (images through the whole
               network: expensive on a CPU, off by default)
  lora4/8/16   peft=PeftConfig("lora", rank=r, blocks=B): every 1x1 convolution of
               the top B blocks (default B=4, --lora-blocks)
  bitfit       peft="bitfit" on the top B blocks (MobileNetV2's convolutions have no
               bias: the BatchNormalization offsets)
  bn_affine    peft="bn_affine" on the top B blocks

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

from _common import markdown_table, seed_keras_home
from recipe_sweep import DATASETS, _assets, load_folder, split

METHODS = ("head", "top4", "full", "lora4", "lora8", "lora16", "bitfit", "bn_affine")
DEFAULT_METHODS = ("head", "top4", "lora4", "lora8", "lora16", "bitfit", "bn_affine")


def _fit_kwargs(method: str, lora_blocks: int):
    import kerastl.peft

    if method == "head":
        return {"recipe": "feature_extraction"}
    if method == "top4":
        return {"recipe": "two_stage", "trainable_blocks": 4}
    if method == "full":
        return {"recipe": "two_stage", "trainable_blocks": "all"}
    if method.startswith("lora"):
        return {"peft": kerastl.peft.PeftConfig("lora", rank=int(method[4:]),
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


def run_one(method, arrays, num_classes, size, cache, lora_blocks, folder):
    import kerastl

    x, y, tr, va, test_x, test_y = arrays
    start = time.perf_counter()
    model = kerastl.build("mobilenet_v2", num_classes, input_shape=size)
    backbone_params = _size(kerastl.get_backbone(model).weights)
    report = kerastl.fit(model, (x[tr].astype("float32"), y[tr]),
                         (x[va].astype("float32"), y[va]), feature_cache=cache, seed=0,
                         verbose=0, **_fit_kwargs(method, lora_blocks))
    probs = model.predict(test_x.astype("float32"), batch_size=64, verbose=0)
    seconds = time.perf_counter() - start
    backbone, total, file_bytes = _trained(model, report, method, folder)
    kept = report.stages[report.best_stage]
    return {"method": method, "test_accuracy": float((probs.argmax(1) == test_y).mean()),
            "val_accuracy": report.best.get("val_accuracy"), "kept_stage": kept.name,
            "stages": [{"name": s.name, "val": s.best.get("val_accuracy"),
                        "epochs_run": s.epochs_run} for s in report.stages],
            "trained_backbone_params": backbone, "trained_params": total,
            "backbone_params": backbone_params, "backbone_fraction": backbone / backbone_params,
            "file_bytes": file_bytes, "seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _table(records) -> str:
    rows = [("dataset", "method", "test acc", "kept stage", "trained (backbone %)",
             "per-task bytes", "seconds", "peak RSS MB")]
    for r in records:
        rows.append((r["dataset"], r["method"], f"{r['test_accuracy']:.3f}", r["kept_stage"],
                     f"{r['trained_params']:,} ({100 * r['backbone_fraction']:.2f}%)",
                     f"{r['file_bytes']:,}", f"{r['seconds']:.0f}", f"{r['peak_rss_mb']:.0f}"))
    return markdown_table(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--lora-blocks", type=int, default=4)
    parser.add_argument("--per-class", default="all",
                        help="training images per class (smoke runs), or all (80:20 split)")
    parser.add_argument("--results", type=Path, default=None, help="append JSON lines here")
    args = parser.parse_args(argv)
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    assets = _assets()
    seed_keras_home(assets)
    from kerastl.training import FeatureCache

    per_class = args.per_class if args.per_class == "all" else int(args.per_class)
    records = []
    with tempfile.TemporaryDirectory(prefix="peft_bench_") as tmp:
        for dataset in args.datasets.split(","):
            train_dir, test_dir = DATASETS[dataset]
            root = assets / "datasets" / dataset
            x, y, names = load_folder(root / train_dir, args.image_size)
            test_x, test_y, _ = load_folder(root / test_dir, args.image_size)
            tr, va = split(y, per_class, 0)
            cache = FeatureCache()
            for method in methods:
                record = {"dataset": dataset, "image_size": args.image_size,
                          "num_train": len(tr), "num_val": len(va), "num_test": len(test_y),
                          "lora_blocks": args.lora_blocks}
                record.update(run_one(method, (x, y, tr, va, test_x, test_y), len(names),
                                      args.image_size, cache, args.lora_blocks, Path(tmp)))
                print(json.dumps(record), flush=True)
                records.append(record)
                if args.results:
                    with args.results.open("a") as handle:
                        handle.write(json.dumps(record) + "\n")
    print(_table(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
