"""Run reports: a folder of settings, history, metrics, plots and ``report.md``.

* `kerastl.report.report` (re-exported as ``kerastl.report(...)``): writes a
  run folder from a model, a fit report, evaluation data, a tune result
  and/or an export report, and returns a `RunReport`.
* `kerastl.report.classification_metrics`, `multilabel_metrics`,
  `regression_metrics`: the numbers in ``metrics.json``, from labels and
  predictions alone.
* `kerastl.report.plot_training_curves`, `plot_confusion_matrix`,
  `plot_trial_scores`: the PNG plots (matplotlib, Agg canvas, no pyplot).

Example:
    >>> run = kerastl.report("runs/flowers", model=model, fit_report=fit_report,
    ...                      eval_data=data)
    >>> print(run)
"""

import sys
import types

from kerastl.report.history import stages_from, write_history_csv
from kerastl.report.metrics import (as_class_indices, classification_metrics, confusion_matrix,
                                    format_metrics, multilabel_metrics, regression_metrics)
from kerastl.report.plots import plot_confusion_matrix, plot_training_curves, plot_trial_scores
from kerastl.report.writer import RunReport, compute_metrics, predict_labels, report

__all__ = [
    "RunReport", "as_class_indices", "classification_metrics", "compute_metrics",
    "confusion_matrix", "format_metrics", "multilabel_metrics", "plot_confusion_matrix",
    "plot_training_curves", "plot_trial_scores", "predict_labels", "regression_metrics",
    "report", "stages_from", "write_history_csv",
]


class _CallableModule(types.ModuleType):
    """Makes ``kerastl.report(...)`` call `report` while ``kerastl.report.<name>`` still works."""

    __call__ = staticmethod(report)


sys.modules[__name__].__class__ = _CallableModule
