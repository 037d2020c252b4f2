"""``kerastl predict MODEL IMAGE...``: top-k labels of images, with any model format.

A thin caller of `kerastl.load_predictor` (multi-task models: top-k per task):
images are decoded as in training,
files that cannot be used are skipped and listed (stderr, and ``skipped`` in
``--json``), and every label or file name is printed escaped and clipped.
"""

from __future__ import annotations

import click

from kerastl.cli.common import Output, import_kerastl, output_options, safe_field

BATCH = 32
MAX_LISTED_SKIPPED = 20


def _best(top_k: list[dict]) -> str:
    return ", ".join(f"{safe_field(p['label'])} {p['score']:.3f}" for p in top_k)


def _text(records: list[dict], regression: bool) -> str:
    lines = []
    for r in records:
        name = safe_field(r["image"], 500)
        if "tasks" in r:
            lines.append(f"{name}: " + " | ".join(f"{safe_field(t)}: {_best(best)}"
                                                   for t, best in r["tasks"].items()))
        elif regression:
            lines.append(f"{name}: {', '.join(f'{v:.4g}' for v in r['predictions'])}")
        else:
            lines.append(f"{name}: {_best(r['top_k'])}")
    return "\n".join(lines)


def _quiet(records: list[dict], regression: bool) -> str:
    lines = []
    for r in records:
        fields = [safe_field(r["image"], 500)]
        if "tasks" in r:  # one line per image and task: image, task, label/score pairs
            lines += ["\t".join(fields + [safe_field(t)] + [
                v for p in best for v in (safe_field(p["label"]), f"{p['score']:.4f}")])
                for t, best in r["tasks"].items()]
            continue
        if regression:
            fields.append(",".join(f"{v:.6g}" for v in r["predictions"]))
        else:
            for p in r["top_k"]:
                fields += [safe_field(p["label"]), f"{p['score']:.4f}"]
        lines.append("\t".join(fields))
    return "\n".join(lines)


def _report_skipped(skipped: list, out: Output) -> None:
    if not skipped:
        return
    lines = [f"Skipped {len(skipped)} file(s) that cannot be used:"]
    lines += [f"  {safe_field(path, 500)}: {safe_field(reason, 300)}"
              for path, reason in skipped[:MAX_LISTED_SKIPPED]]
    if len(skipped) > MAX_LISTED_SKIPPED:
        lines.append(f"  ... and {len(skipped) - MAX_LISTED_SKIPPED} more (see --json)")
    click.echo("\n".join(lines), err=True)  # also when quiet: a file was left out


@click.command("predict")
@click.argument("model", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", "-k", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many of the best labels to show per image (with --quiet: label and "
                   "score pairs, tab-separated). Example: --top-k 1")
@output_options
def predict_command(model, images, *, top_k: int, out: Output):
    """Predict the labels of images with a trained or exported model.

    MODEL is a .keras file, a .tflite file (float or int8, run with the
    TFLite runtime like on a phone), a SavedModel folder, an exported version
    folder (saved_models/NAME/1: its model.keras) or an export folder (its
    newest version); the first status line names the file that runs. IMAGE
    is an image file or a folder of them, decoded as in training and resized
    to the model's input size; files that cannot be read, or with more than
    89,478,485 pixels, are skipped and listed. A multi-task model prints
    the top-k labels of every task (``tasks`` per image in --json; with
    --quiet one line per image and task).

    \b
    Examples:
      kerastl predict runs/flowers/model.keras rose.jpg
      kerastl predict saved_models/flowers/1/model_int8.tflite photos/ --top-k 1
      kerastl predict saved_models/flowers daisy.jpg --json
    """
    kerastl = import_kerastl(debug=out.debug)
    files = kerastl.predictor.image_files(images)
    predictor = kerastl.load_predictor(model)
    out.status(f"Model: {predictor.path} ({predictor.kind})")
    paths, parts, skipped = [], [], []
    with out.progress(range(0, len(files), BATCH), label="Predicting") as starts:
        for start in starts:
            result = predictor.predict_files(files[start:start + BATCH], batch_size=BATCH)
            paths += result.paths
            parts.append(result.scores)
            skipped += result.skipped
    _report_skipped(skipped, out)
    if not paths:
        raise ValueError(f"None of the {len(files)} image file(s) could be read (listed above).")
    regression = predictor.task == "regression"
    records = _records(kerastl, predictor, paths, _concatenate(parts), top_k)
    data = {"model": str(model), "artifact": predictor.path, "format": predictor.kind,
            "predictions": records,
            "skipped": [{"image": p, "reason": r} for p, r in skipped]}
    out.result(data, _text(records, regression), quiet_text=_quiet(records, regression))


def _concatenate(parts: list):
    """The batches' scores as one array, or one per task (a multi-task model's dicts)."""
    import numpy as np  # here: the CLI starts without numpy

    if isinstance(parts[0], dict):
        return {t: np.concatenate([p[t] for p in parts]) for t in parts[0]}
    return np.concatenate(parts)


def _records(kerastl, predictor, paths, scores, top_k: int) -> list[dict]:
    """One record per image: its top-k labels (per task for a multi-task model)."""
    tasks = getattr(predictor, "tasks", None)
    if tasks:
        best = {t: kerastl.predictor.top_k_labels(scores[t], labels, top_k)
                for t, labels in tasks.items()}
        return [{"image": path, "tasks": {t: best[t][i] for t in tasks}}
                for i, path in enumerate(paths)]
    records = []
    for path, row in zip(paths, scores):
        if predictor.task == "regression":
            records.append({"image": path, "predictions": [float(v) for v in row]})
        else:
            best = kerastl.predictor.top_k_labels(row[None], predictor.labels, top_k)[0]
            records.append({"image": path, "top_k": best})
    return records
