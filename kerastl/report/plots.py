"""PNG plots of a run: training curves, confusion matrix, tuning trial scores.

Drawn on matplotlib `Figure` objects with the Agg canvas directly (no
pyplot), so they work on headless machines and never change the global
matplotlib backend of a notebook.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from kerastl.report.history import metric_names, num_epochs

MAX_PANELS = 4
MAX_ANNOTATED_CLASSES = 30
_SKIP_METRICS = ("lr", "learning_rate")


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> Path:
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _panels(stages: list[dict]) -> list[str]:
    bases = []
    for name in metric_names(stages):
        base = name[4:] if name.startswith("val_") else name
        if base not in bases and base not in _SKIP_METRICS:
            bases.append(base)
    return bases[:MAX_PANELS]


def plot_training_curves(stages: list[dict], path, *, title: str | None = None) -> Path:
    """Plots train (solid) and validation (dashed) curves of every metric, per stage.

    Epochs run on across stages; each stage has its own color and a shaded
    span labelled with its name.

    Args:
        stages: Stages from `kerastl.report.stages_from`.
        path: The PNG to write.
        title: Figure title.

    Returns:
        `path`.
    """
    panels = _panels(stages) or ["loss"]
    fig = _figure(5.0 * len(panels), 3.8)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colors = [f"C{i}" for i in range(10)]
    start = 0
    for index, stage in enumerate(stages):
        n = num_epochs(stage)
        epochs = np.arange(start + 1, start + n + 1)
        color = colors[index % len(colors)]
        for ax, base in zip(axes, panels):
            for key, style in ((base, "-"), (f"val_{base}", "--")):
                values = stage["history"].get(key)
                if values:
                    label = f"{stage['name']} {'val' if key.startswith('val_') else 'train'}"
                    ax.plot(epochs[:len(values)], values, style, color=color, marker="o",
                            markersize=3, label=label)
            if index % 2 == 1:
                ax.axvspan(start + 0.5, start + n + 0.5, color="0.92", zorder=0)
            if index > 0:
                ax.axvline(start + 0.5, color="0.5", linewidth=0.8, linestyle=":")
        start += n
    for ax, base in zip(axes, panels):
        ax.set_xlabel("epoch")
        ax.set_ylabel(base)
        ax.grid(True, alpha=0.3)
        if ax.lines:
            ax.legend(fontsize="small")
        else:
            ax.text(0.5, 0.5, "no epochs recorded", ha="center", va="center",
                    transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_confusion_matrix(matrix, class_names: list[str], path, *,
                          title: str = "Confusion matrix") -> Path:
    """Plots a confusion matrix: colors by row-normalized rate, cells annotated with counts.

    Args:
        matrix: ``(K, K)`` counts, rows = true class, columns = predicted.
        class_names: The K class names.
        path: The PNG to write.
        title: Figure title.

    Returns:
        `path`.
    """
    matrix = np.asarray(matrix, dtype="float64")
    k = len(class_names)
    rows = matrix.sum(axis=1, keepdims=True)
    rates = np.divide(matrix, rows, out=np.zeros_like(matrix), where=rows > 0)
    side = min(3.0 + 0.45 * k, 16.0)
    fig = _figure(side + 1.0, side)
    ax = fig.subplots()
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of true class")
    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= MAX_ANNOTATED_CLASSES:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center", fontsize=8,
                        color="white" if rates[i, j] > 0.5 else "black")
    return _save(fig, path)


def plot_trial_scores(trials: list[dict], path, *, objective: str = "score",
                      direction: str = "max") -> Path:
    """Plots each tuning trial's score in run order, with the best so far.

    Args:
        trials: Dicts with ``trial_id``, ``score`` (None or NaN when the trial
            failed) and optionally ``status``.
        path: The PNG to write.
        objective: Name of the score (y-axis label).
        direction: ``"max"`` or ``"min"``: which score is better.

    Returns:
        `path`.
    """
    scores = []
    for t in trials:
        s = t.get("score")
        scores.append(float(s) if s is not None and not math.isnan(float(s)) else None)
    fig = _figure(max(5.0, 0.4 * len(trials) + 2.0), 3.8)
    ax = fig.subplots()
    xs = np.arange(1, len(trials) + 1)
    done = [(x, s) for x, s in zip(xs, scores) if s is not None]
    if done:
        ax.bar([x for x, _ in done], [s for _, s in done], color="tab:blue", alpha=0.7,
               label="trial score")
        pick = max if direction == "max" else min
        best, running = None, []
        for s in scores:
            if s is not None:
                best = s if best is None else pick(best, s)
            running.append(best)
        ax.step(xs, [np.nan if r is None else r for r in running], where="mid",
                color="tab:orange", label="best so far")
        top = pick(done, key=lambda p: p[1])
        ax.scatter([top[0]], [top[1]], marker="*", s=160, color="tab:orange", zorder=3)
    failed = [x for x, s in zip(xs, scores) if s is None]
    if failed:
        ax.scatter(failed, [0.0] * len(failed), marker="x", color="tab:red", label="failed")
    ax.set_xticks(xs)
    ax.set_xticklabels([str(t.get("trial_id", i + 1)) for i, t in enumerate(trials)],
                       rotation=45, ha="right", fontsize="small")
    ax.set_xlabel("trial")
    ax.set_ylabel(objective)
    ax.grid(True, axis="y", alpha=0.3)
    if done or failed:
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no trials", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("Tuning trials")
    return _save(fig, path)
