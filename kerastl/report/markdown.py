"""``report.md``: one page that links every file of a run folder."""

from __future__ import annotations

import math


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items()) or "-"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list]) -> list[str]:
    """Returns the lines of a Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def _settings(config: dict, recipe: str | None) -> list[str]:
    if not config:
        return []
    rows = [[k, f"{v} (ran: {recipe})" if k == "recipe" and recipe and v != recipe else v]
            for k, v in config.items()]
    return ["## Settings", "", *table(["setting", "value"], rows),
            "", "[config.json](config.json) holds these settings under the command's flag "
            "names: pass it back with `--config config.json` (and a new `--output`) to repeat "
            "the run.", ""]


def _training(stages: list[dict], files: dict, recipe: str | None) -> list[str]:
    if not stages:
        return []
    rows = [[s["stage"], s["epochs"], s["best_val_accuracy"], s["best_val_loss"],
             s["final_loss"], None if s["seconds"] is None else f"{s['seconds']:.1f}"]
            for s in stages]
    lines = ["## Training", ""]
    if recipe:
        lines += [f"Recipe `{recipe}`.", ""]
    lines += [*table(["stage", "epochs", "best val accuracy", "best val loss",
                      "final train loss", "seconds"], rows), ""]
    if "training_curves" in files:
        lines += [f"![Training curves]({files['training_curves']})", ""]
    if "history" in files:
        lines += [f"Per-epoch values: [{files['history']}]({files['history']}).", ""]
    return lines


def _evaluation(metrics: dict | None, files: dict) -> list[str]:
    if not metrics:
        return []
    source = f" ({metrics['data']})" if metrics.get("data") else ""
    lines = ["## Evaluation", ""]
    if metrics.get("task") == "regression":
        lines += [f"{metrics['num_examples']} examples{source}: MAE {metrics['mae']:.4g}, "
                  f"RMSE {metrics['rmse']:.4g}, R² {metrics['r2']:.4f}.", ""]
    else:
        lines += [f"**Accuracy {metrics['accuracy']:.4f}** on {metrics['num_examples']} "
                  f"images{source} (macro F1 {metrics['macro_f1']:.4f}).", ""]
        rows = [[name, r["precision"], r["recall"], r["f1"], r["support"]]
                for name, r in metrics["per_class"].items()]
        lines += [*table(["class", "precision", "recall", "F1", "support"], rows), ""]
    if "confusion_matrix" in files:
        lines += [f"![Confusion matrix]({files['confusion_matrix']})", ""]
    lines += [f"All numbers: [{files['metrics']}]({files['metrics']}).", ""]
    return lines


def _tuning(tuning: dict | None, files: dict) -> list[str]:
    if not tuning:
        return []
    lines = ["## Tuning", "",
             f"{len(tuning['trials'])} trials, objective `{tuning['objective']}` "
             f"({tuning['direction']}); best score {_cell(tuning['best_score'])} with "
             f"{_cell(tuning['best_hyperparameters'])}.", ""]
    columns = [c for c in tuning["columns"] if any(t.get(c) is not None for t in tuning["trials"])]
    lines += [*table(columns, [[t.get(c) for c in columns] for t in tuning["trials"]]), ""]
    for key, caption in (("trial_scores", "Trial scores"), ("tune_search", "Score by setting")):
        if key in files:
            lines += [f"![{caption}]({files[key]})", ""]
    if "trials" in files:
        lines += [f"Trials as CSV: [{files['trials']}]({files['trials']}).", ""]
    return lines


def _export(export: dict | None, files: dict) -> list[str]:
    if not export:
        return []
    rows = [[a["name"], None if a.get("size_bytes") is None else f"{a['size_bytes']:,}",
             a.get("accuracy"), a.get("agreement"), a.get("latency_ms")]
            for a in export.get("artifacts", [])]
    lines = ["## Export", "", f"Version `{export.get('version')}` in `{export.get('path')}`.", "",
             *table(["artifact", "bytes", "accuracy", "agreement with Keras", "ms/image"], rows),
             ""]
    if "export" in files:
        lines += [f"Full export report: [{files['export']}]({files['export']}).", ""]
    return lines


def render(*, title: str, created: str, versions: dict, config: dict, stages: list[dict],
           metrics: dict | None, tuning: dict | None, export: dict | None,
           files: dict, recipe: str | None = None, other_files=()) -> str:
    """Returns the text of ``report.md``.

    `recipe` is the recipe `kerastl.fit` ran (shown next to a requested
    ``"auto"``); `other_files` are files of the run folder written by others.
    """
    lines = [f"# {title}", "", f"Written {created} by kerastl {versions.get('kerastl', '?')} "
             f"(TensorFlow {versions.get('tensorflow', '?')}, Keras {versions.get('keras', '?')}).",
             ""]
    lines += _settings(config, recipe)
    lines += _training(stages, files, recipe)
    lines += _evaluation(metrics, files)
    lines += _tuning(tuning, files)
    lines += _export(export, files)
    lines += ["## Files", ""]
    lines += [f"- [{name}]({name})" for name in sorted(set(files.values()) | set(other_files))]
    return "\n".join(lines) + "\n"
