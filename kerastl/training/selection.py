"""The stage loop of `kerastl.fit`: run each stage, keep the best, refit a kept head.

`run_stages` runs a recipe's stages in order. Each later stage starts from
the weights the earlier ones left and is kept only when `keeps` says it
clearly beats them on the validation data (a sign test on the examples
they disagree on); otherwise the weights of the best earlier stage are
restored. A stage that could not be kept whatever it learns (the best
earlier stage misses fewer than two validation examples) is not run. When
the run ends at a closed-form linear head
and `refit_head` is on, the head is refitted on training + validation data
at its chosen strength (every choice is made by then).
"""

from __future__ import annotations

import time

import keras
import numpy as np

from kerastl.training.callbacks import is_better
from kerastl.training.report import StageReport
from kerastl.training.stage import refit_linear_head, run_stage


def run_stages(ctx, stages, report, *, runner=run_stage) -> None:
    """Runs `stages` on `ctx` and leaves the model at the kept stage's weights.

    Args:
        ctx: The run's `kerastl.training.stage.Context`.
        stages: The `kerastl.training.Stage` list of the recipe.
        report: The `kerastl.training.FitReport` to fill (``stages``,
            ``best``, ``best_stage``, ``num_examples``).
        runner: Function ``(ctx, index, stage) -> StageReport`` that trains one
            stage (default `kerastl.training.stage.run_stage`; `kerastl.peft`
            and `kerastl.distill` pass their own).

    Example:
        >>> kerastl.training.selection.run_stages(ctx, stages, report)
        >>> report.best_stage
        1
    """
    best, best_stage, best_weights, best_outcomes = None, None, None, None
    if ctx.checkpoint is not None:
        saved = ctx.checkpoint.load_best()
        if saved is not None:
            best, best_stage, best_weights, best_outcomes = saved
    _warm_cache(ctx, [s for i, s in enumerate(stages)
                      if ctx.checkpoint is None or ctx.checkpoint.finished(i) is None])
    judged = len(stages) > 1
    for index, stage in enumerate(stages):
        done = ctx.checkpoint.finished(index) if ctx.checkpoint else None
        if done is not None:
            ctx.checkpoint.restore_stage(ctx.model, index)
            report.stages.append(done)
            continue
        if best_outcomes is not None and not can_be_beaten(best_outcomes):
            report.stages.append(_not_run(ctx, stage, best_stage, best_outcomes))
            if ctx.checkpoint is not None:
                ctx.checkpoint.finish_stage(ctx.model, index, report.stages[-1])
            continue
        stage_report = runner(ctx, index, stage)
        report.stages.append(stage_report)
        report.num_examples = ctx.train.num_examples
        outcomes = validation_outcomes(ctx) if judged else None
        kept = ctx.validation is None or keeps(ctx, stage_report.best, best, outcomes=outcomes,
                                               best_outcomes=best_outcomes)
        if best is not None and ctx.validation is not None:
            stage_report.comparison = dict(_comparison(outcomes, best_outcomes),
                                           against=best_stage, kept=bool(kept))
        if kept:
            best, best_stage, best_weights = stage_report.best, index, ctx.model.get_weights()
            best_outcomes = outcomes
            if ctx.checkpoint is not None:
                ctx.checkpoint.save_best(best_weights, best, index, outcomes)
        if ctx.checkpoint is not None:
            ctx.checkpoint.finish_stage(ctx.model, index, stage_report)
    if best_weights is not None and best_stage != len(stages) - 1:
        ctx.model.set_weights(best_weights)
    report.best, report.best_stage = dict(best or {}), best_stage
    kept = report.stages[best_stage] if best_stage is not None else None
    if (ctx.options.refit_head and kept is not None and kept.solver == "linear"
            and ctx.validation is not None and not kept.refit_on):
        refit_linear_head(ctx, kept)


def keeps(ctx, logs, best, *, outcomes=None, best_outcomes=None) -> bool:
    """Whether a stage's best metrics `logs` replace the earlier stages' `best`.

    On an accuracy a later stage must clearly beat the best earlier one on
    the validation data. With both stages' per-example outcomes
    (`validation_outcomes`) this is a sign test on the examples they
    disagree on (`clearly_better`): with ``gained`` examples only the new
    stage gets right and ``lost`` the other way round, it is kept when
    ``gained - lost >= max(2, sqrt(gained + lost))``. One example is within
    the noise of the choice, and the more two models disagree, the larger a
    difference chance alone produces. Without outcomes (a resumed run that
    saved none, a multi-output model) the rule is the same margin of two
    examples on the accuracy. Loss monitors need a strict improvement.

    Args:
        ctx: The run's context (its ``monitor`` and ``validation.num_examples``).
        logs: The stage's metrics.
        best: The metrics of the best earlier stage, or None (the first stage).
        outcomes: The stage's per-example validation correctness, or None.
        best_outcomes: The best earlier stage's, or None.

    Returns:
        True when the stage is kept.

    Example:
        >>> kerastl.training.selection.keeps(ctx, {"val_accuracy": 0.95},
        ...                                  {"val_accuracy": 0.90})
        True
    """
    if best is None:
        return is_better(logs, None, ctx.monitor)
    if not is_better(logs, best, ctx.monitor):
        return False
    if not ctx.monitor.endswith("accuracy"):
        return True
    if outcomes is not None and best_outcomes is not None and len(outcomes) == len(
            best_outcomes):
        counts = _comparison(outcomes, best_outcomes)
        return clearly_better(counts["gained"], counts["lost"])
    count = ctx.validation.num_examples or 0
    gain = float(logs[ctx.monitor]) - float(best[ctx.monitor])
    if not count:
        return True
    # In examples: 2 or more. Half an example absorbs float32 rounding of the
    # metrics and a count that is an upper bound (a dataset's last batch).
    return gain * count > 1.5


def clearly_better(gained: int, lost: int) -> bool:
    """The sign test of `keeps`: ``gained - lost >= max(2, sqrt(gained + lost))``.

    Under the hypothesis that both models are as good, each of the ``n =
    gained + lost`` examples they disagree on goes either way with
    probability 1/2, so ``gained - lost`` has mean 0 and standard deviation
    ``sqrt(n)``; the rule asks for one standard deviation and at least two
    examples.

    Args:
        gained: Examples the new model gets right and the old one wrong.
        lost: Examples the old model gets right and the new one wrong.

    Returns:
        True when the new model is kept.

    Example:
        >>> kerastl.training.selection.clearly_better(9, 3)
        True
        >>> kerastl.training.selection.clearly_better(12, 8)
        False
    """
    difference = int(gained) - int(lost)
    return difference >= 2 and difference * difference >= int(gained) + int(lost)


def can_be_beaten(outcomes) -> bool:
    """Whether any later stage could be kept over a stage with these `outcomes`.

    A later stage must gain at least two examples more than it loses
    (`clearly_better`), so a stage that misses fewer than two validation
    examples cannot be beaten and the stages after it are not run.

    Args:
        outcomes: The stage's per-example validation correctness
            (`validation_outcomes`).

    Returns:
        True when at least two validation examples are wrong.

    Example:
        >>> kerastl.training.selection.can_be_beaten(np.array([True, False, False]))
        True
    """
    return int(np.sum(~np.asarray(outcomes, bool))) >= 2


def _not_run(ctx, stage, best_stage, best_outcomes):
    """The report of a stage skipped because the kept stage cannot be beaten."""
    wrong, total = int(np.sum(~np.asarray(best_outcomes, bool))), len(best_outcomes)
    depth = stage.trainable_blocks if isinstance(stage.trainable_blocks, int) else 0
    blocks = getattr(ctx, "blocks", None) or []
    names = [b.name for b in blocks[len(blocks) - depth:]] if depth and blocks else []
    return StageReport(
        stage.name, depth, names, [], stage.epochs, learning_rate=stage.learning_rate,
        backbone_learning_rate=stage.backbone_learning_rate, layer_decay=stage.layer_decay,
        selected_on=(f"none: not run (the kept stage misses {wrong} of {total} validation "
                     "examples; a stage must get 2 more right to be kept)"),
        comparison={"rule": "not run", "gained": None, "lost": None,
                    "against": best_stage, "kept": False})


def validation_outcomes(ctx):
    """Per-example correctness of ``ctx.model`` on the validation data, or None.

    The model runs in inference mode over the context's
    ``validation_batches()`` (``(images, labels)`` batches as the model
    sees them) in one pass, the labels read from the same batches, so a
    reshuffling dataset stays paired. An example is right when its top class is the label
    (``"multiclass"``) or every output is on the label's side of 0.5
    (``"binary"``). None without validation data, for a monitor that is not
    an accuracy, or for a model with several outputs.

    Args:
        ctx: The run's `kerastl.training.stage.Context`.

    Returns:
        A boolean array with one entry per validation example, or None.

    Example:
        >>> kerastl.training.selection.validation_outcomes(ctx)[:4]
        array([ True,  True, False,  True])
    """
    batches = ctx.validation_batches() if ctx.monitor.endswith("accuracy") else None
    if batches is None:
        return None
    right = []
    for batch in batches:
        predictions = ctx.model(batch[0], training=False)
        if not hasattr(predictions, "shape"):
            return None
        predictions = np.asarray(keras.ops.convert_to_numpy(predictions), "float32")
        right.append(_right(ctx.task, predictions, np.asarray(batch[1])))
    return np.concatenate(right) if right else None


def _right(task: str, predictions, labels):
    """Per-row correctness; multiclass labels are class ids or one-hot rows."""
    rows = len(predictions)
    if task == "multiclass":
        ids = (labels.reshape(rows) if labels.ndim == 1 or labels.shape[-1] == 1
               else labels.argmax(-1))
        return predictions.argmax(-1) == ids.astype("int64")
    return ((predictions > 0.5) == (labels > 0.5)).reshape(rows, -1).all(-1)


def _comparison(outcomes, best_outcomes) -> dict:
    if outcomes is None or best_outcomes is None or len(outcomes) != len(best_outcomes):
        return {"rule": "margin", "gained": None, "lost": None}
    outcomes, best_outcomes = np.asarray(outcomes, bool), np.asarray(best_outcomes, bool)
    return {"rule": "sign test", "gained": int(np.sum(outcomes & ~best_outcomes)),
            "lost": int(np.sum(best_outcomes & ~outcomes))}


def _warm_cache(ctx, stages):
    """Fills the cache at the most upstream cut of the run, so later cuts derive from it."""
    cuts = [ctx.cut_for(s.trainable_blocks)[0] for s in stages]
    cuts = [c for c in cuts if c is not None]
    if not cuts:
        return
    first = cuts[0]
    for cut in cuts[1:]:
        if cut.upstream_of(first):
            first = cut
    if first is not cuts[0]:
        start = time.perf_counter()
        ctx.cached(first)
        ctx.warm_seconds = time.perf_counter() - start


__all__ = ["can_be_beaten", "clearly_better", "keeps", "run_stages", "validation_outcomes"]
