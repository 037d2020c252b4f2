"""int8 calibration: which images `kerastl.export` calibrates on, and how many.

Protocol: each dataset's training folder is split 80:20 per class (seed 0,
`recipe_sweep.split`; the training indices come class after class, as a
folder is read). A MobileNet alpha=0.25 student at 128 px is fitted with
`kerastl.fit` defaults on the 80 %, then exported as int8 ``.tflite`` once per
calibration set, and the float model and each int8 file are scored on the
dataset's held-out folder (nothing is chosen here: every row is reported).

Calibration sets (all from the training images):

* ``first_100``: the first 100 of the class-sorted array, passed as such
  (what `kerastl.export` calibrated on before it spread the images: one class);
* ``spread_100``, ``spread_400``: the whole array passed, `kerastl.export`
  takes 100 / 400 images spread over it (the default is 200 since it spreads);
* ``all``: every training image.

Usage::

    KERASTL_ASSETS=../shared/assets python benchmarks/calibration_study.py \
        --datasets flowers_kaggle_227,cats_and_dogs_filtered --seeds 0,1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import append_record, markdown_table, read_records, seed_keras_home  # noqa: E402
from recipe_sweep import DATASETS, _assets, load_folder, split  # noqa: E402

SETS = ("first_100", "spread_100", "spread_400", "all")


def _calibration(name: str, x: np.ndarray):
    """``(representative_data, num_calibration_samples)`` of calibration set `name`."""
    if name == "first_100":
        return x[:100], 100
    if name == "all":
        return x, len(x)
    return x, int(name.split("_")[1])


def run(dataset: str, size: int, seed: int, out: Path, work: Path) -> None:
    import kerastl
    from kerastl.training.fitting import fit

    train_folder, test_folder = DATASETS[dataset]
    root = _assets() / "datasets" / dataset
    x, y, classes = load_folder(root / train_folder, size)
    test = load_folder(root / test_folder, size)[:2]
    tr, va = split(y, "all", 0)
    model = kerastl.build("mobilenet", len(classes), input_shape=size, class_names=classes,
                          backbone_kwargs={"alpha": 0.25})
    fit(model, (x[tr], y[tr]), (x[va], y[va]), seed=seed, verbose=0)
    first = np.bincount(y[tr][:100], minlength=len(classes))
    for name in SETS:
        data, count = _calibration(name, x[tr])
        report = kerastl.export(model, work / f"{dataset}_{seed}_{name}", formats=("tflite",),
                                quantization=("int8",), eval_data=test,
                                representative_data=data, num_calibration_samples=count,
                                overwrite=True, version="1", verbose=0)
        artifact = report.artifact("model_int8.tflite")
        append_record(out, {"dataset": dataset, "size": size, "seed": seed, "calibration": name,
                            "images": count, "float_accuracy": report.keras.get("accuracy"),
                            "int8_accuracy": artifact.accuracy,
                            "agreement": artifact.agreement,
                            "first_100_classes": int(np.count_nonzero(first))})


def table(records) -> str:
    rows = [["dataset", "seed", "calibration", "images", "float acc", "int8 acc", "int8 - float",
             "top-1 agreement"]]
    for r in records:
        rows.append([r["dataset"], str(r["seed"]), r["calibration"], str(r["images"]),
                     f"{100 * r['float_accuracy']:.1f}", f"{100 * r['int8_accuracy']:.1f}",
                     f"{100 * (r['int8_accuracy'] - r['float_accuracy']):+.1f}",
                     "-" if r["agreement"] is None else f"{100 * r['agreement']:.1f}"])
    return markdown_table(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="flowers_kaggle_227")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", default="benchmarks/results/calibration_study.jsonl")
    args = parser.parse_args(argv)
    seed_keras_home(_assets())
    out = Path(args.out)
    done = {(r["dataset"], r["size"], r["seed"]) for r in read_records(out)}
    with tempfile.TemporaryDirectory(prefix="kerastl_calibration_") as tmp:
        for dataset in args.datasets.split(","):
            for seed in [int(s) for s in args.seeds.split(",")]:
                if (dataset, args.size, seed) not in done:
                    run(dataset, args.size, seed, out, Path(tmp))
    print(table([r for r in read_records(out) if r["size"] == args.size]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
