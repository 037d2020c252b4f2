"""Multi-task models: one shared backbone, one head per task.

* ``kerastl.build(backbone, tasks={"species": 5, "healthy": ["no", "yes"]})``
  builds the model (outputs ``{task: probabilities}``).
* `kerastl.multitask.fit` trains it on one dataset per task, with equal, fixed
  or learned uncertainty loss weights; `get_heads` reads its heads.
* `kerastl.multitask.export`: a SavedModel signature per task, one multi-output
  `.tflite` per quantization (int8 calibrated on every task's data), labels per
  task in the manifest; `kerastl.load_predictor` on any of them returns a
  `MultiTaskPredictor` (``predict`` / ``top_k`` give ``{task: ...}``).

Example:
    >>> model = kerastl.build("mobilenet_v2", tasks={"species": 5, "healthy": 2})
    >>> report = kerastl.multitask.fit(model, {"species": flowers, "healthy": leaves})
"""

from kerastl.multitask.export import MultiTaskExport, export
from kerastl.multitask.fit import MultiTaskReport, fit
from kerastl.multitask.heads import check_tasks, get_heads
from kerastl.multitask.predictor import MultiTaskPredictor
from kerastl.multitask.weighting import WEIGHTINGS, MultiTaskTrainer

__all__ = ["MultiTaskExport", "MultiTaskPredictor", "MultiTaskReport", "MultiTaskTrainer",
           "WEIGHTINGS", "check_tasks", "export", "fit", "get_heads"]
