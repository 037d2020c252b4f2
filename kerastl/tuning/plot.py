"""The PNG of `kerastl.TuneResult.plot`: score vs unfreeze depth and learning rate.

Drawn with matplotlib's Agg canvas directly (no pyplot), so it works headless
and leaves the global matplotlib backend alone.
"""

from __future__ import annotations

from pathlib import Path

from kerastl.freezing import ALL


def _points(result, key):
    done, failed = [], []
    for t in result.trials:
        hp = t["hyperparameters"]
        x = result.depth_position(hp.get(key)) if key == "trainable_blocks" else hp.get(key)
        if x is None:
            continue
        if t in result.completed:
            done.append((float(x), float(t["score"]), t))
        elif t["status"] == "FAILED":
            failed.append(float(x))
    return done, failed


def _panel(ax, result, key, *, log_x):
    done, failed = _points(result, key)
    best = result.best_trial
    if done:
        xs, ys = [p[0] for p in done], [p[1] for p in done]
        ax.scatter(xs, ys, c="tab:blue", alpha=0.7, label="trial")
        bx = [p for p in done if p[2] is best]
        if bx:
            ax.scatter([bx[0][0]], [bx[0][1]], c="tab:orange", s=120, marker="*", label="best")
    if failed:
        low = min([p[1] for p in done], default=0.0)
        ax.scatter(failed, [low] * len(failed), c="tab:red", marker="x", label="failed")
    if log_x and (done or failed):
        ax.set_xscale("log")
    ax.set_ylabel(result.objective)
    ax.grid(True, alpha=0.3)
    if done or failed:
        ax.legend(loc="best", fontsize="small")


def plot_trials(result, path: Path) -> Path:
    """Writes `result`'s trials to `path` as a two-panel PNG and returns `path`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if path.suffix.lower() != ".png":
        raise ValueError(f"`path` must end in .png. Received: path={str(path)!r}")
    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    _panel(left, result, "trainable_blocks", log_x=False)
    left.set_xlabel("trainable blocks (unfreeze depth)")
    depths = sorted({result.depth_position(t["hyperparameters"].get("trainable_blocks"))
                     for t in result.trials} - {None})
    if depths:
        left.set_xticks(depths)
        left.set_xticklabels([ALL if result.num_blocks and d == result.num_blocks
                              else str(int(d)) for d in depths])
    _panel(right, result, "learning_rate", log_x=True)
    right.set_xlabel("learning rate")
    fig.suptitle(f"kerastl.tune: {len(result.completed)} completed, "
                 f"{len(result.failed)} failed trials")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
