"""Multi-task loss weighting: equal, fixed, or learned uncertainty weights (Kendall et al. 2018)."""

from __future__ import annotations

import keras
from keras import ops

from kerastl._validation import check_float
from kerastl.multitask.heads import get_heads

WEIGHTINGS = ("equal", "uncertainty")


def check_weighting(value, tasks) -> str | dict:
    """Returns ``"equal"``, ``"uncertainty"`` or ``{task: weight}`` (every task, weights > 0)."""
    if isinstance(value, dict):
        if set(value) != set(tasks):
            raise ValueError(f"`loss_weighting` must give a weight for each task {list(tasks)}. "
                             f"Received: loss_weighting={value!r}")
        return {t: check_float(f"loss_weighting[{t!r}]", value[t], minimum=0.0,
                               min_inclusive=False) for t in tasks}
    if value not in WEIGHTINGS:
        raise ValueError("`loss_weighting` must be 'equal', 'uncertainty' or {task: weight}. "
                         f"Received: loss_weighting={value!r}")
    return value


class MultiTaskTrainer(keras.Model):
    """Trains a multi-task model: per-task masked losses, combined by the weighting.

    The loss of a task is its mean over the batch's examples of that task (0
    when the batch has none). ``"uncertainty"`` learns ``s_t = log sigma_t^2`` per
    task and minimises ``sum_t exp(-s_t) L_t + s_t / 2`` over the tasks present in
    the batch (Kendall, Gal and Cipolla 2018); ``weight_<task>`` (``exp(-s_t)``)
    and ``<task>_loss`` are logged every epoch.

    Args:
        model: The multi-task kerastl model (outputs ``{task: probabilities}``).
        weighting: ``"equal"``, ``"uncertainty"`` or ``{task: weight}``.
        label_smoothing: Label smoothing of every task's cross-entropy.
    """

    def __init__(self, model, weighting, *, label_smoothing: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.inner = model
        self.tasks = list(get_heads(model))
        self.weighting = weighting
        self.label_smoothing = label_smoothing
        self.log_vars = {}
        if weighting == "uncertainty":
            self.log_vars = {t: self.add_weight(name=f"log_var_{t}", shape=(),
                                                initializer="zeros") for t in self.tasks}
        self.task_losses = {t: keras.metrics.Mean(name=f"{t}_loss") for t in self.tasks}
        self.task_weights = {t: keras.metrics.Mean(name=f"weight_{t}") for t in self.tasks}

    def call(self, inputs, training=False):
        return self.inner(inputs, training=training)

    def _task_loss(self, task, labels, probs, weight):
        depth = ops.shape(probs)[-1]
        target = ops.one_hot(ops.cast(labels, "int32"), depth)
        if self.label_smoothing:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / depth
        per_example = keras.losses.categorical_crossentropy(target, probs)
        present = ops.sum(weight)
        return ops.sum(per_example * weight) / ops.maximum(present, 1.0), ops.minimum(present, 1.0)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        total = 0.0
        for task in self.tasks:
            loss, present = self._task_loss(task, y[task], y_pred[task], sample_weight[task])
            if self.weighting == "uncertainty":
                s = self.log_vars[task]
                weight = ops.exp(-s)
                total = total + present * (weight * loss + 0.5 * s)
            else:
                weight = 1.0 if self.weighting == "equal" else self.weighting[task]
                total = total + weight * loss
            self.task_losses[task].update_state(loss, sample_weight=present)
            self.task_weights[task].update_state(weight)
        return total

    def weights_now(self) -> dict:
        """``{task: loss weight}`` now (the learned ``exp(-s_t)`` for ``"uncertainty"``)."""
        if self.weighting == "uncertainty":
            return {t: float(ops.exp(-self.log_vars[t])) for t in self.tasks}
        return {t: 1.0 if self.weighting == "equal" else self.weighting[t] for t in self.tasks}


__all__ = ["MultiTaskTrainer", "WEIGHTINGS", "check_weighting"]
