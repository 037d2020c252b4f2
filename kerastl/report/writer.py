"""`kerastl.report`: writes a run folder (settings, history, metrics, plots, report.md)."""

from __future__ import annotations

import csv
import dataclasses
import datetime
import json
from pathlib import Path

import numpy as np

from kerastl._json import json_default
from kerastl.report import history as history_lib
from kerastl.report import markdown, metrics as metrics_lib, plots

FILES = {"config": "config.json", "history": "history.csv", "metrics": "metrics.json",
         "training_curves": "training_curves.png", "confusion_matrix": "confusion_matrix.png",
         "trials": "trials.csv", "tuning": "tuning.json", "trial_scores": "trial_scores.png",
         "tune_search": "tune_search.png", "export": "export.json", "report": "report.md",
         "model": "model.keras"}
_TRIAL_COLUMNS = ("trial_id", "status", "score", "epochs", "pruned", "seconds")


@dataclasses.dataclass
class RunReport:
    """What `kerastl.report` wrote.

    Attributes:
        path: The run folder.
        files: ``{kind: file name}`` of every file written (``"metrics"``,
            ``"confusion_matrix"``, ``"report"``, ...), relative to `path`.
        metrics: The evaluation metrics (as in ``metrics.json``), or None.
        stages: Per training stage: epochs, seconds, best validation values.
        tuning: Trials and best setting of a tuning run, or None.
    """

    path: str
    files: dict
    metrics: dict | None = None
    stages: list = dataclasses.field(default_factory=list)
    tuning: dict | None = None

    def file(self, kind: str) -> Path:
        """Returns the full path of a written file, e.g. ``report.file("report")``."""
        if kind not in self.files:
            raise KeyError(f"This run has no {kind!r} file; it has: {', '.join(self.files)}")
        return Path(self.path) / self.files[kind]

    def to_dict(self) -> dict:
        """Returns the report as a JSON-friendly dict."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        lines = [f"run report: {Path(self.path) / self.files['report']}"]
        for s in self.stages:
            acc = s["best_val_accuracy"]
            lines.append(f"  {s['stage']}: {s['epochs']} epochs"
                         + ("" if acc is None else f", best val accuracy {acc:.4f}"))
        if self.metrics and "accuracy" in self.metrics:
            lines.append(f"  accuracy {self.metrics['accuracy']:.4f} on "
                         f"{self.metrics['num_examples']} images")
        if self.tuning:
            lines.append(f"  tuning: best {self.tuning['objective']} "
                         f"{self.tuning['best_score']} with {self.tuning['best_hyperparameters']}")
        return "\n".join(lines)


def _write_json(path: Path, data) -> None:
    path.write_text(json.dumps(data, indent=2, default=json_default) + "\n", encoding="utf-8")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("kerastl", "tensorflow", "keras"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "?"
    return out


def _eval_source(eval_data):
    """Returns (dataset or arrays, description) from an ImageData, dataset or (x, y)."""
    if hasattr(eval_data, "splits") and hasattr(eval_data, "class_names"):
        for split in ("test", "validation"):
            if getattr(eval_data, split, None) is not None:
                return getattr(eval_data, split), f"the {split} split"
        raise ValueError("`eval_data` has neither a test nor a validation split; pass one "
                         "of its datasets (e.g. data.train) explicitly.")
    if isinstance(eval_data, (tuple, list)) and len(eval_data) == 2:
        x, y = (np.asarray(v) for v in eval_data)
        return [(x[i:i + 32], y[i:i + 32]) for i in range(0, len(x), 32)], "the given arrays"
    return eval_data, None


def predict_labels(model, eval_data) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Runs `model` over labelled data.

    Args:
        model: A Keras model.
        eval_data: A `kerastl.data.ImageData` (its test split, else its
            validation split), a `tf.data.Dataset` of ``(images, labels)``
            batches, or a tuple ``(images, labels)`` of arrays.

    Returns:
        ``(y_true, outputs, description of the data)``.
    """
    source, description = _eval_source(eval_data)
    labels, outputs = [], []
    for batch in source:
        x, y = batch[0], batch[1]
        outputs.append(np.asarray(model.predict_on_batch(x)))
        labels.append(np.asarray(y))
    if not labels:
        raise ValueError("`eval_data` is empty: no batches to evaluate.")
    return np.concatenate(labels), np.concatenate(outputs), description


def _model_facts(model) -> dict:
    import kerastl

    try:
        return kerastl.model_info(model).to_dict()
    except ValueError:
        return {}


def compute_metrics(y_true, y_pred, *, task: str | None, class_names) -> dict:
    """Picks the metrics of `task` (inferred from the shapes when None) and computes them."""
    y_pred = np.asarray(y_pred)
    if task is None:
        n_out = y_pred.shape[1] if y_pred.ndim == 2 else 1
        task = "binary" if n_out == 1 and np.issubdtype(y_pred.dtype, np.floating) else "multiclass"
    if task == "regression":
        return metrics_lib.regression_metrics(y_true, y_pred)
    if task == "multilabel":
        return metrics_lib.multilabel_metrics(y_true, y_pred, class_names=class_names)
    if task == "binary" and class_names is None:
        class_names = ["0", "1"]
    return metrics_lib.classification_metrics(y_true, y_pred, class_names=class_names, task=task)


def _tuning_summary(tune_result) -> dict:
    rows = tune_result.rows() if hasattr(tune_result, "rows") else [
        {**{k: v for k, v in t.items() if k != "hyperparameters"}, **t.get("hyperparameters", {})}
        for t in tune_result.trials]
    columns = list(_TRIAL_COLUMNS)
    for row in rows:
        columns += [k for k in row if k not in columns and k not in ("error",)]
    return {"objective": tune_result.objective,
            "direction": getattr(tune_result, "direction", "max"),
            "best_score": tune_result.best_score,
            "best_hyperparameters": tune_result.best_hyperparameters,
            "columns": columns, "trials": rows}


def _write_tuning(run: Path, tune_result, files: dict) -> dict:
    tuning = _tuning_summary(tune_result)
    full = tune_result.to_dict() if hasattr(tune_result, "to_dict") else tuning
    _write_json(run / FILES["tuning"], full)
    files["tuning"] = FILES["tuning"]
    with (run / FILES["trials"]).open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=tuning["columns"], extrasaction="ignore")
        writer.writeheader()
        writer.writerows(tuning["trials"])
    files["trials"] = FILES["trials"]
    plots.plot_trial_scores(tuning["trials"], run / FILES["trial_scores"],
                            objective=tuning["objective"], direction=tuning["direction"])
    files["trial_scores"] = FILES["trial_scores"]
    if hasattr(tune_result, "plot"):
        tune_result.plot(run / FILES["tune_search"])
        files["tune_search"] = FILES["tune_search"]
    return tuning


def resolved_recipe(fit_report) -> str | None:
    """Returns the recipe a `kerastl.fit` report ran (``"auto"`` resolved), or None."""
    if isinstance(fit_report, (list, tuple)):  # chained reports (a tuning refit)
        return None
    recipe = getattr(fit_report, "recipe", None)
    if recipe is None and isinstance(fit_report, dict):
        recipe = fit_report.get("recipe")
    return recipe if isinstance(recipe, str) else None


def _write_training(run: Path, fit_report, files: dict, title: str) -> list[dict]:
    stages = history_lib.stages_from(fit_report)
    if not stages:
        return []
    history_lib.write_history_csv(stages, run / FILES["history"])
    files["history"] = FILES["history"]
    plots.plot_training_curves(stages, run / FILES["training_curves"], title=title)
    files["training_curves"] = FILES["training_curves"]
    return history_lib.stage_summary(stages)


def _evaluation(model, eval_data, y_true, y_pred, task, class_names):
    facts = _model_facts(model) if model is not None else {}
    task = task or facts.get("task")
    class_names = (class_names or facts.get("class_names")
                   or getattr(eval_data, "class_names", None))
    description = None
    if y_true is None and y_pred is None:
        if model is None or eval_data is None:
            return None, facts
        y_true, y_pred, description = predict_labels(model, eval_data)
    elif y_true is None or y_pred is None:
        raise ValueError("Pass both `y_true` and `y_pred` (or `model` and `eval_data`).")
    result = compute_metrics(y_true, y_pred, task=task, class_names=class_names)
    if description:
        result["data"] = description
    return result, facts


def report(run_dir, *, model=None, fit_report=None, eval_data=None, y_true=None, y_pred=None,
           class_names=None, task=None, tune_result=None, export_report=None, config=None,
           title=None) -> RunReport:
    """Writes a run folder: settings, history, metrics, plots and a ``report.md`` linking them.

    Files (each only when its input is given): ``config.json`` (the
    settings), ``history.csv`` and ``training_curves.png`` (from
    `fit_report`), ``metrics.json`` (accuracy, per-class precision/recall/F1,
    confusion matrix) and ``confusion_matrix.png`` (from `model` +
    `eval_data`, or `y_true` + `y_pred`), ``tuning.json``, ``trials.csv``,
    ``trial_scores.png`` and ``tune_search.png`` (from `tune_result`),
    ``export.json`` (from `export_report`), and always ``report.md``. The
    page links every file of the folder, also those written before (the
    ``model.keras`` of ``kerastl train``), and names the recipe `kerastl.fit`
    ran when `config` asked for ``"auto"``.

    Args:
        run_dir: The folder to write (created if missing; files are replaced).
        model: A trained model to evaluate on `eval_data`.
        fit_report: The report of `kerastl.fit`, a `keras.callbacks.History`
            or a ``{metric: [values]}`` dict (see `kerastl.report.stages_from`).
        eval_data: Labelled data for `model`: a `kerastl.data.ImageData` (its
            test split, else validation), a `tf.data.Dataset` of ``(images,
            labels)`` batches, or a tuple of arrays.
        y_true: True labels, instead of `model` + `eval_data`.
        y_pred: Predicted indices or model outputs, with `y_true`.
        class_names: Class names (default: the model's, else the data's).
        task: ``"multiclass"``, ``"binary"``, ``"multilabel"`` or ``"regression"``
            (default: the model's, else inferred from `y_pred`).
        tune_result: A `kerastl.tune` result; its best model's refit history
            is used when `fit_report` is None.
        export_report: A `kerastl.export` report.
        config: The run's settings (a dict), written to ``config.json``.
        title: Title of ``report.md`` (default: the folder name).

    Returns:
        A `kerastl.report.RunReport`.

    Example:
        >>> fit_report = kerastl.fit(model, data.train, data.validation)
        >>> run = kerastl.report("runs/flowers", model=model, fit_report=fit_report,
        ...                      eval_data=data, config={"backbone": "mobilenet_v2"})
        >>> run.metrics["accuracy"], run.file("report")
    """
    if config is not None and not isinstance(config, dict):
        raise TypeError(f"`config` must be a dict or None. Received: config={config!r}")
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    title = title or f"kerastl run: {run.resolve().name}"
    files = {}
    _write_json(run / FILES["config"], config or {})
    files["config"] = FILES["config"]
    if fit_report is None and tune_result is not None:
        fit_report = getattr(tune_result, "best_report", None)
    stages = _write_training(run, fit_report, files, title) if fit_report is not None else []
    metrics, facts = _evaluation(model, eval_data, y_true, y_pred, task, class_names)
    if metrics is not None:
        if facts:
            metrics["model"] = facts
        _write_json(run / FILES["metrics"], metrics)
        files["metrics"] = FILES["metrics"]
        if "confusion_matrix" in metrics:
            plots.plot_confusion_matrix(metrics["confusion_matrix"], metrics["class_names"],
                                        run / FILES["confusion_matrix"])
            files["confusion_matrix"] = FILES["confusion_matrix"]
    tuning = _write_tuning(run, tune_result, files) if tune_result is not None else None
    export = None
    if export_report is not None:
        export = export_report.to_dict() if hasattr(export_report, "to_dict") else export_report
        _write_json(run / FILES["export"], export)
        files["export"] = FILES["export"]
    files["report"] = FILES["report"]
    if (run / FILES["model"]).is_file():  # saved by the caller (kerastl train/tune)
        files["model"] = FILES["model"]
    others = sorted(p.name for p in run.iterdir() if p.is_file() and p.name not in
                    set(files.values()))
    created = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    text = markdown.render(title=title, created=created, versions=_versions(),
                           config=config or {}, stages=stages, metrics=metrics, tuning=tuning,
                           export=export, files=files, recipe=resolved_recipe(fit_report),
                           other_files=others)
    (run / FILES["report"]).write_text(text, encoding="utf-8")
    return RunReport(path=str(run), files=files, metrics=metrics, stages=stages, tuning=tuning)
