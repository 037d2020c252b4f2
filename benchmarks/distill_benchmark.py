"""Distillation benchmark: a MobileNetV2 teacher into MobileNet alpha=0.25 students.

Protocol (honest): each dataset's training folder is split 80:20 per class
into training and validation images (seeded); everything is chosen on those
(the teacher's stages and epochs, the students' epochs and stages); the
reported accuracy is on the dataset's own held-out folder (``val/`` or
``validation/``), which nothing was chosen on.

* teacher: ``kerastl.build("mobilenet_v2", input_shape=224)`` + ``kerastl.fit`` defaults;
* (a) the student trained directly: ``kerastl.fit`` defaults;
* (b) ``kerastl.distillation.distill`` defaults with every label;
* (c) the same with half the training labels dropped (stratified; those
  images passed as ``unlabeled=``).

Each student is exported as int8 ``.tflite`` (`kerastl.distillation.compare`):
test accuracy of the Keras model and the int8 file, the file's size, its
single-image latency through LiteRT on this CPU; and the wall time of each
training call. (b) and (c) share the teacher's outputs (one `TeacherCache`, per
image), so (b)'s wall time includes them and (c)'s does not (``teacher_seconds``).
``--work DIR`` keeps the teacher, its outputs and the results, so the benchmark
can run in pieces: a rerun skips what is done.

Run: ``KERASTL_ASSETS=../shared/assets python benchmarks/distill_benchmark.py
--datasets flowers_kaggle_227 --sizes 128`` (``--smoke``: 10 images per class,
a 96 px teacher and one epoch per stage, to check the script).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import seed_keras_home  # noqa: E402
from recipe_sweep import DATASETS, _assets, load_folder, split  # noqa: E402


def _half_labels(labels: np.ndarray, seed: int):
    """Stratified halves of the indices: (kept labelled, dropped to unlabelled)."""
    rng = np.random.default_rng(seed)
    keep, drop = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        keep.append(members[: len(members) // 2])
        drop.append(members[len(members) // 2:])
    return np.concatenate(keep), np.concatenate(drop)


def _timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


class Results:
    """JSON records appended to ``work/results.jsonl``; a rerun skips what is there."""

    def __init__(self, work: Path, name: str = "results.jsonl"):
        self.path = work / name
        self.records = []
        if self.path.exists():
            self.records = [json.loads(line) for line in self.path.read_text().splitlines()]

    def done(self, dataset, model, size, seed=None):
        return next((r for r in self.records if (r["dataset"], r["model"], r["size"])
                     == (dataset, model, size) and (seed is None or r.get("seed", 0) == seed)),
                    None)

    def add(self, record):
        self.records.append(record)
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def _teacher(name, x, y, tr, va, test, classes, args, work, results):
    """The teacher: kerastl.fit defaults at 224 px, saved in `work` and reused by a rerun."""
    import kerastl
    # Not kerastl.fit: importing kerastl.training.fit (as distillation does) makes
    # kerastl.training.fit the module in kerastl 9f9ab81 (see the issue 17 report).
    from kerastl.training.fitting import fit

    path = work / f"teacher_{name}.keras"
    size = x.shape[1]
    if path.exists() and results.done(name, "teacher", size):
        return kerastl.load(path)
    teacher = kerastl.build("mobilenet_v2", len(classes), input_shape=size, class_names=classes)
    report, seconds = _timed(lambda: fit(
        teacher, (x[tr], y[tr]), (x[va], y[va]), seed=args.seed, verbose=0,
        **({"fine_tune_epochs": 1} if args.smoke else {})))
    teacher.save(path)
    results.add({"dataset": name, "model": "teacher", "size": size,
                 "test_accuracy": float(teacher.evaluate(*test, verbose=0, batch_size=32)[1]),
                 "params": int(teacher.count_params()), "seconds": seconds,
                 "val_accuracy": report.best.get("val_accuracy")})
    return teacher


def _data(name, args):
    from kerastl.distillation.views import resized  # noqa: F401  (imports TF once)

    train_folder, test_folder = DATASETS[name]
    root = _assets() / "datasets" / name
    teacher_size = 96 if args.smoke else 224
    x, y, classes = load_folder(root / train_folder, teacher_size)
    test_x, test_y, _ = load_folder(root / test_folder, teacher_size)
    if args.smoke:
        pick = np.concatenate([np.flatnonzero(y == c)[:10] for c in np.unique(y)])
        x, y = x[pick], y[pick]
        test_x, test_y = test_x[:40], test_y[:40]
    tr, va = split(y, "all", args.seed)  # the split is fixed; --seeds vary the training
    return x, y, classes, tr, va, (test_x, test_y)


def _student(classes, size):
    import kerastl

    return kerastl.build("mobilenet", len(classes), input_shape=size, class_names=classes,
                         backbone_kwargs={"alpha": 0.25})


def run_dataset(name, sizes, args, work, results):
    from kerastl.distillation import TeacherCache, compare, distill
    from kerastl.distillation.views import resized
    from kerastl.training.fitting import fit

    x, y, classes, tr, va, test = _data(name, args)
    models = args.models.split(",")
    teacher = None
    if any(m != "a_fit" for m in models):
        teacher = _teacher(name, x, y, tr, va, test, classes, args, work, results)
    cache = TeacherCache(str(work / f"teacher_outputs_{name}"))
    keep, drop = _half_labels(y[tr], args.seed)
    smoke = {"fine_tune_epochs": 1} if args.smoke else {}
    views = {} if args.views is None else {"views": args.views}
    for size in sizes:
        xs = resized(x, (size, size))
        for seed in [int(s) for s in args.seeds.split(",")]:
            runs = {
                "a_fit": lambda m: fit(m, (xs[tr], y[tr]), (xs[va], y[va]), seed=seed,
                                       verbose=0, **smoke),
                "b_distill": lambda m: distill(teacher, m, (x[tr], y[tr]), (x[va], y[va]),
                                               seed=seed, verbose=0, teacher_cache=cache,
                                               **views, **smoke),
                "c_distill_half": lambda m: distill(teacher, m, (x[tr][keep], y[tr][keep]),
                                                    (x[va], y[va]), unlabeled=x[tr][drop],
                                                    seed=seed, verbose=0, teacher_cache=cache,
                                                    **views, **smoke)}
            for label, train in runs.items():
                if label not in models or results.done(name, label, size, seed):
                    continue
                model = _student(classes, size)
                report, seconds = _timed(lambda: train(model))
                row = compare({label: model}, test, directory=work / f"export_{name}_{size}",
                              representative_data=(x[tr], y[tr]),
                              num_calibration_samples=20 if args.smoke else 100)[0]
                stages = [(s.name, s.best.get("val_accuracy"), round(s.seconds, 1))
                          for s in report.stages]
                results.add({"dataset": name, "model": label, "size": size, "seed": seed,
                             "test_accuracy": row.accuracy, "int8_accuracy": row.int8_accuracy,
                             "int8_mb": row.int8_bytes / 1e6, "latency_ms": row.latency_ms,
                             "params": row.parameters, "seconds": seconds,
                             "val_accuracy": report.best.get("val_accuracy"),
                             "kept_stage": report.stages[report.best_stage].name,
                             "stages": stages,
                             "teacher_seconds": getattr(report, "teacher_seconds", None),
                             "labelled": getattr(report, "num_labeled", len(tr))})


# One-factor-at-a-time around the defaults: {name: (distill keyword, values)}.
SWEEP = {"T": ("temperature", (1.0, 2.0, 4.0)), "alpha": ("alpha", (0.5, 0.9, 1.0)),
         "epochs": ("fine_tune_epochs", (6, 12, 24)), "lr": ("learning_rate", (3e-4, 1e-3, 3e-3)),
         "views": ("views", (1, 2, 4)), "blocks": ("trainable_blocks", (2, 4, 8))}


def run_sweep(name, size, args, work):
    """Validation accuracy of the distillation stage from the fitted student, per setting.

    The student is fitted once (`kerastl.fit` defaults, the (a) row); every
    setting starts from those weights (``start="student"``) and changes one
    argument from the defaults. Only validation numbers are recorded.
    """
    from kerastl.distillation import TeacherCache, distill
    from kerastl.distillation.views import resized
    from kerastl.training.fitting import fit

    x, y, classes, tr, va, test = _data(name, args)
    results = Results(work)
    teacher = _teacher(name, x, y, tr, va, test, classes, args, work, results)
    cache = TeacherCache(str(work / f"teacher_outputs_{name}"))
    sweep = Results(work, "sweep.jsonl")
    xs = resized(x, (size, size))
    fitted = _student(classes, size)
    report, seconds = _timed(lambda: fit(fitted, (xs[tr], y[tr]), (xs[va], y[va]),
                                         seed=args.seed, verbose=0))
    weights = fitted.get_weights()
    print(f"fit: val {report.best.get('val_accuracy'):.4f} in {seconds:.1f} s", flush=True)
    from kerastl.distillation import options

    defaults = {"temperature": options.DEFAULT_TEMPERATURE, "alpha": options.DEFAULT_ALPHA,
                "views": options.DEFAULT_VIEWS, "learning_rate": 1e-3, "trainable_blocks": 4,
                "fine_tune_epochs": options.DEFAULT_FINE_TUNE_EPOCHS}
    base = json.loads(args.sweep_base)
    defaults.update(base)
    prefix = "".join(f"{k}={v}," for k, v in sorted(base.items()))
    settings = [(prefix + "base", {})] + [
        (f"{prefix}{k}={v}", {arg: v}) for k, (arg, values) in SWEEP.items()
        for v in values if k in args.sweep.split(",") and v != defaults[arg]]
    for label, kwargs in settings:
        kwargs = {**base, **kwargs}
        if sweep.done(name, label, size, args.seed):
            continue
        model = _student(classes, size)
        model.set_weights(weights)
        out, seconds = _timed(lambda: distill(teacher, model, (x[tr], y[tr]), (x[va], y[va]),
                                              start="student", seed=args.seed, verbose=0,
                                              teacher_cache=cache, **kwargs))
        last = out.stages[-1]
        sweep.add({"dataset": name, "model": label, "size": size, "seed": args.seed,
                   "fit_val": out.stages[0].best.get("val_accuracy"),
                   "val_accuracy": last.best.get("val_accuracy"),
                   "val_distillation_loss": last.best.get("val_distillation_loss"),
                   "best_epoch": last.best_epoch, "epochs_run": last.epochs_run,
                   "kept": out.stages[out.best_stage].name, "seconds": seconds,
                   "teacher_seconds": out.teacher_seconds, "cache_seconds": last.cache_seconds,
                   "train_seconds": last.train_seconds})


def _table(records) -> str:
    """Rows (a), (b), (c) and the teacher: mean ± std over the seeds of each."""
    groups = {}
    for r in records:
        groups.setdefault((r["dataset"], r["model"], r["size"]), []).append(r)
    fits = {(d, z): np.mean([r["seconds"] for r in rs]) for (d, m, z), rs in groups.items()
            if m == "a_fit"}
    lines = ["| dataset | model | px | seeds | test acc | int8 acc | int8 MB | latency ms | "
             "params | seconds | x fit | val acc |", "|" + "---|" * 12]
    for (dataset, model, size), rs in groups.items():
        def stat(key, scale=100.0, digits=1):
            values = [r[key] * scale for r in rs if r.get(key) is not None]
            if not values:
                return "-"
            mean = f"{np.mean(values):.{digits}f}"
            return mean if len(values) == 1 else f"{mean} ± {np.std(values, ddof=1):.{digits}f}"

        seconds = np.mean([r["seconds"] for r in rs])
        ratio = "-" if model == "teacher" or (dataset, size) not in fits else \
            f"{seconds / fits[dataset, size]:.1f}"
        lines.append(f"| {dataset} | {model} | {size} | {len(rs)} | {stat('test_accuracy')} | "
                     f"{stat('int8_accuracy')} | {stat('int8_mb', 1.0, 3)} | "
                     f"{stat('latency_ms', 1.0, 2)} | {rs[0]['params'] / 1e6:.2f} M | "
                     f"{stat('seconds', 1.0, 0)} | {ratio} | {stat('val_accuracy')} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="flowers_kaggle_227",
                        help="Comma list of " + ", ".join(DATASETS))
    parser.add_argument("--sizes", default="128", help="Student sizes, e.g. 128,160")
    parser.add_argument("--views", type=int, default=None,
                        help="Views per image (default: distill's default)")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the split and the teacher")
    parser.add_argument("--seeds", default="0", help="Comma list of training seeds of the "
                                                     "students, e.g. 0,1,2")
    parser.add_argument("--sweep", default=None,
                        help="Instead of the rows: the validation sweep of the distillation "
                             "stage over these of " + ", ".join(SWEEP) + " (comma list)")
    parser.add_argument("--sweep-base", default="{}",
                        help="JSON of distill arguments the sweep starts from (default: "
                             "distill's defaults), e.g. '{\"temperature\": 1.0}'")
    parser.add_argument("--models", default="a_fit,b_distill,c_distill_half",
                        help="Which of a_fit, b_distill, c_distill_half to run (a_fit alone "
                             "needs no teacher)")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--work", default=None,
                        help="Folder kept between runs: the teacher, its outputs and the "
                             "results; a rerun goes on where the last one stopped "
                             "(default: a temporary folder)")
    args = parser.parse_args(argv)
    seed_keras_home(_assets())
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sizes = [128] if args.smoke else [int(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="kerastl_distill_bench_") as tmp:
        work = Path(args.work or tmp)
        work.mkdir(parents=True, exist_ok=True)
        if args.sweep:
            for name in args.datasets.split(","):
                run_sweep(name, sizes[0], args, work)
            return 0
        results = Results(work)
        for name in args.datasets.split(","):
            run_dataset(name, sizes, args, work, results)
    print(_table(results.records))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
