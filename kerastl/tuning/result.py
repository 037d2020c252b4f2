"""`kerastl.TuneResult`: what a search found, as a table, JSON and a plot."""

from __future__ import annotations

import json
import math
from pathlib import Path

from kerastl.freezing import ALL

TRIAL_COLUMNS = ("trial_id", "status", "score", "epochs", "pruned", "seconds",
                 "trainable_blocks", "learning_rate", "backbone_learning_rate", "dropout",
                 "recipe")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.4f}".rstrip("0")
    return str(value)


class TuneResult:
    """The outcome of `kerastl.tune`.

    Attributes:
        best_hyperparameters: The best trial's values as a plain dict (``"all"``
            for the full depth), or None when no trial completed.
        best_score: The best trial's objective value.
        best_model: The best setting rebuilt and trained with `kerastl.fit`
            (``refit=True``), or rebuilt with the best trial's weights when
            first read (``refit=False``; not compiled); None when no trial
            completed.
        refit_metrics: The best validation metrics (and ``seconds``) of the
            refit, or None.
        best_report: The refit's `kerastl.fit` reports in order (head warm-up,
            fine-tuning), which `kerastl.report` writes as ``history.csv`` and
            training curves; None without a refit.
        tuner: The keras-tuner tuner (its oracle holds the raw trials), or None.
        trials: One dict per trial, in start order: ``trial_id``, ``status``
            (``"COMPLETED"``, ``"FAILED"``, ...), ``score``, ``epochs`` (trained in
            this trial), ``seconds`` (its wall time), the hyperparameters, and
            ``error``, ``continued_from``, ``trainable_params``,
            ``shared_head_warmup``, ``head_epochs`` (epochs of its head stage),
            ``pruned`` and ``settled`` (a Hyperband continuation that kept its
            earlier trial's result without training) where known.
        objective: The objective's name, e.g. ``"val_accuracy"``.
        direction: ``"max"`` or ``"min"``.
        num_blocks: The backbone's block count (where ``"all"`` is plotted).
        seconds: Wall time of the search (this call), refit excluded.
        feature_cache: Counters of the shared feature cache (dict), if any.
        backbone: With several backbones: the best one (else None).
        ranking: With several backbones: their `kerastl.ranking.BackboneRanking`.
        backbone_results: With several backbones: ``{backbone: TuneResult}`` of
            those searched.
        dropped_backbones: With several backbones: those the ranking dropped.

    Example:
        >>> result = kerastl.tune(data.train, data.validation, backbone="mobilenet_v2",
        ...                       num_classes=5, max_trials=4)
        >>> print(result.summary())
        >>> result.plot("tune.png")
    """

    def __init__(self, *, trials, objective, direction="max", num_blocks=None, best_model=None,
                 refit_metrics=None, seconds=0.0, feature_cache=None, tuner=None):
        self.trials = list(trials)
        self.objective = objective
        self.direction = direction
        self.num_blocks = num_blocks
        self._best_model = best_model
        self._load_best_model = None
        self.refit_metrics = refit_metrics
        self.tuner = tuner
        self.seconds = float(seconds)
        self.feature_cache = feature_cache
        self.best_report = None  # the refit's kerastl.fit reports (warm-up, fine-tuning)
        # Set by a search over several backbones (kerastl.tuning.backbones):
        self.backbone = None
        self.ranking = None
        self.backbone_results = None
        self.dropped_backbones = None
        best = self.best_trial
        self.best_hyperparameters = None if best is None else dict(best["hyperparameters"])
        self.best_score = None if best is None else best["score"]

    @property
    def best_model(self):
        if self._best_model is None and self._load_best_model is not None:
            self._best_model = self._load_best_model()
        return self._best_model

    @best_model.setter
    def best_model(self, model):
        self._best_model = model

    @property
    def completed(self) -> list:
        """The trials that finished with a score."""
        return [t for t in self.trials if t["status"] == "COMPLETED" and t["score"] is not None
                and not math.isnan(t["score"])]

    @property
    def failed(self) -> list:
        """The trials that raised (status ``"FAILED"``), with their ``error``."""
        return [t for t in self.trials if t["status"] == "FAILED"]

    @property
    def best_trial(self) -> dict | None:
        """The completed trial with the best score, or None."""
        done = self.completed
        if not done:
            return None
        pick = max if self.direction == "max" else min
        return pick(done, key=lambda t: t["score"])

    def rows(self) -> list[dict]:
        """Returns the trials as flat rows (hyperparameters as columns)."""
        out = []
        for t in self.trials:
            row = {k: v for k, v in t.items() if k != "hyperparameters"}
            row.update(t["hyperparameters"])
            out.append(row)
        return out

    def summary(self) -> str:
        """Returns a text table of the trials, best score first line."""
        columns = [c for c in TRIAL_COLUMNS
                   if any(c in r and r[c] is not None for r in self.rows())]
        cells = [[_fmt(r.get(c)) for c in columns] for r in self.rows()]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
        line = lambda vals: "  ".join(v.ljust(w) for v, w in zip(vals, widths))  # noqa: E731
        head = (f"{self.objective} best: {_fmt(self.best_score)} with "
                f"{self.best_hyperparameters}" if self.best_trial else "no trial completed")
        body = [line(columns), line(["-" * w for w in widths])] + [line(c) for c in cells]
        failed = [f"trial {t['trial_id']} failed: {t.get('error') or '?'}" for t in self.failed]
        tail = (f"{len(self.completed)} completed, {len(self.failed)} failed, "
                f"{self.seconds:.1f}s")
        return "\n".join(self._backbone_lines() + [head] + body + failed + [tail])

    def _backbone_lines(self) -> list[str]:
        if self.backbone_results is None:
            return []
        scores = ", ".join(f"{name}: {_fmt(r.best_score)}"
                           for name, r in self.backbone_results.items())
        dropped = ", ".join(self.dropped_backbones or []) or "none"
        return [f"backbones searched (best {self.objective}): {scores}; best: {self.backbone}",
                f"dropped by the ranking ({self.ranking.metric}): {dropped}"]

    def __str__(self) -> str:
        return self.summary()

    def to_dict(self) -> dict:
        """Returns everything but the model as JSON-friendly data."""
        return {"objective": self.objective, "direction": self.direction,
                "best_score": self.best_score, "best_hyperparameters": self.best_hyperparameters,
                "num_blocks": self.num_blocks, "seconds": self.seconds,
                "feature_cache": self.feature_cache,
                "refit_metrics": self.refit_metrics,
                **self._backbone_dict(),
                "trials": [dict(t, hyperparameters=dict(t["hyperparameters"]))
                           for t in self.trials]}

    def _backbone_dict(self) -> dict:
        if self.backbone_results is None:
            return {}
        return {"backbone": self.backbone, "ranking": self.ranking.to_dict(),
                "dropped_backbones": list(self.dropped_backbones or []),
                "backbone_scores": {name: r.best_score
                                    for name, r in self.backbone_results.items()}}

    def to_json(self, path=None, *, indent: int = 2) -> str:
        """Returns the `to_dict` JSON text, also written to `path` when given."""
        text = json.dumps(self.to_dict(), indent=indent, default=_jsonable)
        if path is not None:
            Path(path).write_text(text)
        return text

    def plot(self, path) -> Path:
        """Writes a PNG: score vs unfreeze depth and vs learning rate.

        Failed trials are drawn as red crosses at the bottom of each panel.

        Args:
            path: The ``.png`` file to write.

        Returns:
            The path written.

        Example:
            >>> result.plot("tune.png")
        """
        from kerastl.tuning.plot import plot_trials

        return plot_trials(self, Path(path))

    def depth_position(self, depth) -> float | None:
        """Returns where a depth goes on a numeric axis (``"all"`` at `num_blocks`)."""
        if depth == ALL:
            return float(self.num_blocks) if self.num_blocks else None
        return None if depth is None else float(depth)

    def __repr__(self) -> str:
        return (f"TuneResult(objective={self.objective!r}, best_score={self.best_score!r}, "
                f"best_hyperparameters={self.best_hyperparameters!r}, "
                f"trials={len(self.trials)})")


def _jsonable(value):
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)
