"""`FitReport`: what `kerastl.fit` did, stage by stage."""

from __future__ import annotations

import dataclasses
import json

from kerastl._json import json_default


@dataclasses.dataclass
class StageReport:
    """One stage of a `kerastl.fit` run.

    Attributes:
        name: Stage name (``"head"``, ``"fine_tune"``, ``"unfreeze_<k>"``).
        trainable_blocks: Number of top backbone blocks trained.
        trainable_block_names: Their names, stem to top.
        trainable_weights: Paths of every variable trained in the stage.
        epochs: Epochs planned.
        epochs_run: Epochs run (fewer after early stopping or a NaN).
        learning_rate: Peak head learning rate.
        backbone_learning_rate: Peak rate of the top block (None: the head's).
        layer_decay: Layer-wise decay factor, or None.
        cached: ``"features"`` (pooled features), ``"prefix"`` (activations of
            the frozen bottom blocks) or None (images through the whole model).
        cache_note: Why the stage was not cached, when caching was asked for.
        history: ``{metric: [value per epoch]}``.
        best_epoch: Best epoch (0-based) by the monitored metric, or None.
        best: Metrics of the best epoch.
        stopped: None, ``"early_stopping"`` or ``"nan"``.
        resumed: Whether the stage resumed from a checkpoint.
        cache_seconds: Wall time spent computing cached activations for the stage.
        train_seconds: Wall time of the training epochs.
        images_per_second: Training examples processed per second of `train_seconds`.
        solver: ``"linear"`` (the head fitted in closed form on cached features,
            `kerastl.training.linear_head`) or ``"gradient"`` (epochs of an optimizer).
        l2: The L2 strength the linear head was fitted with (None for ``"gradient"``).
        l2_scores: ``{l2: held-out loss}`` of every strength tried (linear head).
        selected_on: What chose the stage's weights: ``"validation"`` (best
            epoch or strength on the validation data), ``"<k>-fold
            cross-validation"`` (on the training data), or ``"none: ..."``.
        interpolation: The `fine_tune_interpolation` the stage ended at (its
            weights ``(1 - a) * start + a * fine-tuned``; the validation metrics
            in `best` are the interpolated weights'), or None (as trained).
        fine_tuned_best: With `interpolation`: the metrics of the fine-tuned
            weights before the interpolation.
        refit_on: ``"training + validation data"`` when the kept linear head
            was refitted on both after every choice was made (its `best`
            metrics are from before the refit), else None.
        comparison: How a later stage was judged against the best earlier
            one (`kerastl.training.selection.keeps`): ``{"against": stage
            index, "gained": validation examples it gets right that the
            other got wrong, "lost": the other way round, "rule": "sign
            test", "margin" or "not run" (skipped: the earlier stage misses
            fewer than two validation examples, so nothing could be kept),
            "kept": bool}``; None for the first stage.
    """

    name: str
    trainable_blocks: int
    trainable_block_names: list
    trainable_weights: list
    epochs: int
    epochs_run: int = 0
    learning_rate: float = 0.0
    backbone_learning_rate: float | None = None
    layer_decay: float | None = None
    cached: str | None = None
    cache_note: str | None = None
    history: dict = dataclasses.field(default_factory=dict)
    best_epoch: int | None = None
    best: dict = dataclasses.field(default_factory=dict)
    stopped: str | None = None
    resumed: bool = False
    cache_seconds: float = 0.0
    train_seconds: float = 0.0
    images_per_second: float = 0.0
    solver: str = "gradient"
    l2: float | None = None
    l2_scores: dict = dataclasses.field(default_factory=dict)
    selected_on: str | None = None
    interpolation: float | None = None
    fine_tuned_best: dict = dataclasses.field(default_factory=dict)
    refit_on: str | None = None
    comparison: dict | None = None

    @property
    def seconds(self) -> float:
        """Total wall time of the stage (cache + training)."""
        return self.cache_seconds + self.train_seconds

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["seconds"] = self.seconds
        return out


@dataclasses.dataclass
class FitReport:
    """What `kerastl.fit` did.

    Attributes:
        recipe: The recipe run (``"auto"`` resolved).
        task: The model's task.
        monitor: Metric that picked the best epoch (``"val_accuracy"``, ...).
        num_examples: Training examples per epoch.
        stages: One `StageReport` per stage.
        best: Metrics of the best epoch over all stages (the model's final weights).
        best_stage: Index of the stage of that epoch.
        seconds: Wall time of the whole call.
        backbone_batches: Image batches run through the backbone (or its frozen
            prefix) to fill the feature cache.
        selected_on: What chose the stage the model ends at: ``"validation"``
            (a later stage is kept only when it clearly beats the best
            earlier one on the validation data,
            `kerastl.training.selection.keeps`) or ``"none: ..."`` (no
            validation data: the last stage).

    Example:
        >>> report = kerastl.fit(model, data.train, data.validation)
        >>> print(report)
        >>> report.best["val_accuracy"]
        0.93
    """

    recipe: str
    task: str
    monitor: str
    num_examples: int | None
    stages: list = dataclasses.field(default_factory=list)
    best: dict = dataclasses.field(default_factory=dict)
    best_stage: int | None = None
    seconds: float = 0.0
    backbone_batches: int = 0
    selected_on: str | None = None

    @property
    def history(self) -> dict:
        """``{stage name: history}``."""
        return {s.name: s.history for s in self.stages}

    @property
    def images_per_second(self) -> float:
        """Training examples processed per second of the whole call."""
        seen = sum((self.num_examples or 0) * s.epochs_run for s in self.stages)
        return seen / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["stages"] = [s.to_dict() for s in self.stages]
        out["images_per_second"] = self.images_per_second
        return out

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **{"default": json_default, **kwargs})

    def __str__(self) -> str:
        metric = self.monitor
        rows = [("stage", "blocks", "cached", "epochs", f"best {metric}", "seconds", "img/s")]
        for s in self.stages:
            value = s.best.get(metric)
            epochs = (f"l2={s.l2:.3g}" if s.solver == "linear"
                      else f"{s.epochs_run}/{s.epochs}" + (f" ({s.stopped})" if s.stopped else "")
                      + (f", mixed {s.interpolation:g}" if s.interpolation else ""))
            rows.append((s.name, str(s.trainable_blocks), s.cached or "-", epochs,
                         "-" if value is None else f"{value:.4f}", f"{s.seconds:.1f}",
                         f"{s.images_per_second:.0f}"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [f"kerastl.fit: recipe {self.recipe!r}, task {self.task!r}, "
                 f"{self.num_examples} training examples"]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        best = self.best.get(metric)
        lines.append(f"  best {metric}: " + ("-" if best is None else f"{best:.4f}")
                     + ("" if self.best_stage is None
                        else f" (stage {self.stages[self.best_stage].name!r})")
                     + f"; total {self.seconds:.1f} s")
        choices = [f"{s.name}: {s.selected_on}" for s in self.stages if s.selected_on]
        if self.selected_on:
            choices.append(f"stage kept: {self.selected_on}")
        if choices:
            lines.append("  chosen on: " + "; ".join(choices))
        judged = [_judged(s, self.stages) for s in self.stages if s.comparison]
        if judged:
            lines.append("  kept or not: " + "; ".join(judged))
        return "\n".join(lines)


def _judged(stage: StageReport, stages: list) -> str:
    """``"fine_tune vs 'head': +9 -3 validation examples (sign test), kept"``."""
    c = stage.comparison
    against = c.get("against")
    name = stages[against].name if against is not None and against < len(stages) else against
    if c.get("rule") == "not run":
        return f"{stage.name} vs {name!r}: not run (nothing left to win on validation)"
    counts = (f"+{c['gained']} -{c['lost']} validation examples"
              if c.get("gained") is not None else "validation accuracy")
    return (f"{stage.name} vs {name!r}: {counts} ({c.get('rule')}), "
            + ("kept" if c.get("kept") else "discarded"))


__all__ = ["FitReport", "StageReport"]
