"""``kerastl evaluate MODEL DATA``: accuracy, per-class metrics and confusion matrix."""

from __future__ import annotations

import click

from kerastl.cli.common import (Output, import_kerastl, output_options, report_module,
                                safe_field)
from kerastl.cli.config import config_option
from kerastl.cli.loading import (
    SPLIT_CHOICES,
    check_data_spec,
    load_eval_data,
    load_single_task_predictor,
)


def evaluate_predictor(predictor, dataset, out: Output):
    """Runs `predictor` over ``(images, labels)`` batches; returns ``(labels, scores)``."""
    import numpy as np

    labels, scores = [], []
    length = int(dataset.cardinality()) if hasattr(dataset, "cardinality") else -1
    with out.progress(dataset, label="Evaluating", length=length if length > 0 else None) as it:
        for images, y in it:
            scores.append(predictor.predict(np.asarray(images)))
            labels.append(np.asarray(y))
    if not labels:
        raise ValueError("No images to evaluate.")
    return np.concatenate(labels), np.concatenate(scores)


def metrics_for(predictor, y_true, scores, description: str) -> dict:
    """Computes the metrics of `predictor`'s outputs (binary scores come as two columns)."""
    task = predictor.task if predictor.task in ("regression", "multilabel") else "multiclass"
    metrics = report_module().compute_metrics(y_true, scores, task=task,
                                              class_names=predictor.labels)
    metrics["task"] = predictor.task
    metrics["data"] = description
    metrics["model"] = {"path": predictor.path, "format": predictor.kind}
    return metrics


def _matrix_text(metrics: dict) -> str:
    names = [safe_field(n, 30) for n in metrics["class_names"]]
    width = max(len(n) for n in names + ["true \\ pred"])
    cols = [max(len(n), 5) for n in names]
    lines = ["confusion matrix (rows: true, columns: predicted)",
             "true \\ pred".ljust(width) + "".join(f"  {n:>{c}}" for n, c in zip(names, cols))]
    for name, row in zip(names, metrics["confusion_matrix"]):
        lines.append(name.ljust(width) + "".join(f"  {v:>{c}}" for v, c in zip(row, cols)))
    return "\n".join(lines)


def _display_metrics(metrics: dict) -> dict:
    """`metrics` with class names escaped and clipped for a terminal table."""
    if "class_names" not in metrics or "per_class" not in metrics:
        return metrics
    names, per_class = [], {}
    for i, name in enumerate(metrics["class_names"]):
        shown = safe_field(name, 30)
        shown = shown if shown not in per_class else f"{shown} [{i}]"
        names.append(shown)
        per_class[shown] = metrics["per_class"][name]
    return {**metrics, "class_names": names, "per_class": per_class}


@click.command("evaluate")
@click.argument("model", type=click.Path(), required=False)
@click.argument("data", required=False)
@click.option("--split", type=click.Choice(SPLIT_CHOICES), default="auto", show_default=True,
              help="Which images of DATA: auto = test/, else val/, else every image of a "
                   "class-per-folder DATA (tfds: test, validation, else the last 20% of "
                   "train). Example: --split validation")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per batch. Example: --batch-size 64")
@click.option("--output", type=click.Path(file_okay=False), default=None,
              help="Also write metrics.json, confusion_matrix.png and report.md to this folder. "
                   "Example: --output runs/flowers_eval")
@config_option(example="eval.yaml")
@output_options
def evaluate_command(model, data, *, split: str, batch_size: int, output, out: Output):
    """Measure a model on labelled images: accuracy, per-class precision,
    recall and F1, and the confusion matrix.

    MODEL is a .keras file, a .tflite file, a SavedModel folder or an exported
    version folder; DATA is a folder of class folders (or tfds:NAME). The
    class folders are matched to the model's class names.

    \b
    Examples:
      kerastl evaluate runs/flowers/model.keras flowers/ --split validation
      kerastl evaluate saved_models/flowers/1/model_int8.tflite flowers/val
      kerastl evaluate saved_models/flowers flowers/ --json --output runs/flowers_eval
    """
    if not model or not data:
        raise click.UsageError("evaluate needs MODEL and DATA (on the command line or as "
                               "'model' and 'data' in --config).")
    check_data_spec(data)
    kerastl = import_kerastl(debug=out.debug)
    predictor = load_single_task_predictor(kerastl, model, command="evaluate")
    out.status(f"Model: {predictor.path} ({predictor.kind})")
    names = predictor.labels if predictor.task in ("multiclass", "binary") else None
    out.status(f"Loading {data} ...")
    dataset, _, description = load_eval_data(kerastl, data, image_size=predictor.input_shape[:2],
                                             batch_size=batch_size, split=split,
                                             class_names=names)
    with out.working():
        y_true, scores = evaluate_predictor(predictor, dataset, out)
    metrics = metrics_for(predictor, y_true, scores, description)
    if output:
        settings = {"model": str(model), "data": data, "split": split, "batch-size": batch_size}
        task = "multiclass" if metrics["task"] == "binary" else metrics["task"]
        run = report_module()(output, y_true=y_true, y_pred=scores, task=task,
                              class_names=names, config=settings,
                              title=f"kerastl evaluate: {model}")
        out.status(f"Report: {run.file('report')}")
    text = (f"model: {predictor.path} ({predictor.kind})\n"
            + report_module().format_metrics(_display_metrics(metrics)))
    if "confusion_matrix" in metrics:
        text += "\n\n" + _matrix_text(metrics)
    quiet = f"{metrics['accuracy']:.4f}" if "accuracy" in metrics else f"{metrics['mae']:.4g}"
    out.result(metrics, text, quiet_text=quiet)
