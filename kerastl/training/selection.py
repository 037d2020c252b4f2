"""The stage loop of `kerastl.fit`: run each stage, keep the best, refit a kept head.

`run_stages` runs a recipe's stages in order. Each later stage starts from
the weights the earlier ones left and is kept only when `keeps` says it
beats them on the validation data; otherwise the weights of the best
earlier stage are restored. When the run ends at a closed-form linear head
and `refit_head` is on, the head is refitted on training + validation data
at its chosen strength (every choice is made by then).
"""

from __future__ import annotations

import time

from kerastl.training.callbacks import is_better
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
    best, best_stage, best_weights = None, None, None
    if ctx.checkpoint is not None:
        saved = ctx.checkpoint.load_best()
        if saved is not None:
            best, best_stage, best_weights = saved
    _warm_cache(ctx, [s for i, s in enumerate(stages)
                      if ctx.checkpoint is None or ctx.checkpoint.finished(i) is None])
    for index, stage in enumerate(stages):
        done = ctx.checkpoint.finished(index) if ctx.checkpoint else None
        if done is not None:
            ctx.checkpoint.restore_stage(ctx.model, index)
            report.stages.append(done)
            continue
        stage_report = runner(ctx, index, stage)
        report.stages.append(stage_report)
        report.num_examples = ctx.train.num_examples
        if ctx.validation is None or keeps(ctx, stage_report.best, best):
            best, best_stage, best_weights = stage_report.best, index, ctx.model.get_weights()
            if ctx.checkpoint is not None:
                ctx.checkpoint.save_best(best_weights, best, index)
        if ctx.checkpoint is not None:
            ctx.checkpoint.finish_stage(ctx.model, index, stage_report)
    if best_weights is not None and best_stage != len(stages) - 1:
        ctx.model.set_weights(best_weights)
    report.best, report.best_stage = dict(best or {}), best_stage
    kept = report.stages[best_stage] if best_stage is not None else None
    if (ctx.options.refit_head and kept is not None and kept.solver == "linear"
            and ctx.validation is not None and not kept.refit_on):
        refit_linear_head(ctx, kept)


def keeps(ctx, logs, best) -> bool:
    """Whether a stage's best metrics `logs` replace the earlier stages' `best`.

    A later stage must beat the earlier ones by more than one validation
    example on an accuracy: a single example is within the noise of the
    choice (the stage's best epoch was itself picked on those examples), and
    a fine-tuning that does not clearly beat the head is not worth its risk.
    Loss monitors need a strict improvement (no tie-break).

    Args:
        ctx: The run's context (its ``monitor`` and ``validation.num_examples``).
        logs: The stage's metrics.
        best: The metrics of the best earlier stage, or None (the first stage).

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
    count = ctx.validation.num_examples or 0
    gain = float(logs[ctx.monitor]) - float(best[ctx.monitor])
    if not count:
        return True
    # In examples: 2 or more. Half an example absorbs float32 rounding of the
    # metrics and a count that is an upper bound (a dataset's last batch).
    return gain * count > 1.5


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


__all__ = ["keeps", "run_stages"]
