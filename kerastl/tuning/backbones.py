"""Several backbones as a search dimension of `kerastl.tune`, pruned by their ranking.

``kerastl.tune(..., backbone=["mobilenet_v2", "mobilenet", ...])`` first ranks
the backbones on the training + validation images with
`kerastl.rank_backbones` (one frozen pass each, no fine-tuning), drops all
but the `keep_backbones` best (and those that do not beat the random-init
reference, unless none does), then spends the search (trials, fine-tuning
epochs) only on the ones kept, each as its own `kerastl.tune` project. The
best trial over all of them wins; its `TuneResult` also carries the ranking
and every kept backbone's result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from kerastl._validation import check_int

RANK_METRICS = ("logme", "linear_probe")


def _candidates(backbones, build_kwargs):
    """The ranking candidates of the backbone list, with the build's weights and options."""
    from kerastl.ranking import Candidate, as_candidates

    if not isinstance(backbones, (list, tuple)) or not all(isinstance(b, str) for b in backbones):
        raise TypeError("`backbone` must be a backbone name or a list of them. "
                        f"Received: backbone={backbones!r}")
    weights = build_kwargs.get("weights", "imagenet")
    if weights not in ("imagenet", None):
        raise ValueError("Several backbones need `weights` 'imagenet' or None (a weights file "
                         f"fits one architecture). Received: weights={weights!r}")
    shape = build_kwargs.get("input_shape")
    size = shape if isinstance(shape, int) or shape is None else int(tuple(shape)[0])
    items = [Candidate(b, size, dict(build_kwargs.get("backbone_kwargs") or {}), weights)
             for b in backbones]
    return as_candidates(items)


def _space_for(search_space, backbone):
    """A dict space without depths gets `backbone`'s default depths (block counts differ)."""
    if isinstance(search_space, Mapping) and "trainable_blocks" not in search_space:
        from kerastl.tuning.space import SearchSpace

        depths = SearchSpace.default_for(backbone).trainable_blocks
        return SearchSpace.from_dict({**search_space, "trainable_blocks": depths})
    return search_space


def _kept(ranking, keep: int) -> list[str]:
    """The backbones worth tuning: the `keep` best, without negative transfer if possible."""
    pretrained = [r for r in ranking.rows if not r.reference]
    good = [r for r in pretrained if not r.negative_transfer] or pretrained
    return [r.backbone for r in good[:keep]]


def _project(project_name, backbone, algorithm) -> str:
    from kerastl.tuning.tune import _project_name

    name = _project_name(backbone, algorithm)
    return name if project_name is None else re.sub(r"[^A-Za-z0-9_.-]+", "_",
                                                    f"{project_name}_{name}")


def tune_backbones(train, validation_data=None, *, backbones, keep_backbones: int = 2,
                   rank_metric: str = "logme", build_kwargs=None, feature_cache=None,
                   project_name=None, algorithm="hyperband", verbose=1, search_space=None,
                   **tune_kwargs):
    """Ranks `backbones`, tunes the best `keep_backbones` of them, returns the best result.

    Called by `kerastl.tune` when its `backbone` is a list; all other
    arguments are `kerastl.tune`'s, applied to every kept backbone.

    Args:
        train: As for `kerastl.tune` (a dataset or a `kerastl.data.ImageData`).
        validation_data: As for `kerastl.tune`.
        backbones: Backbone names (no duplicates).
        keep_backbones: How many of the best-ranked backbones are tuned.
        rank_metric: `kerastl.rank_backbones` metric: ``"logme"`` or ``"linear_probe"``.
        build_kwargs: `kerastl.build` arguments of every backbone (``weights``,
            ``backbone_kwargs``, ``input_shape``...).
        feature_cache: A `kerastl.training.FeatureCache` for the ranking and the searches.
        project_name: Prefix of the per-backbone project names.
        algorithm: As for `kerastl.tune`.
        verbose: As for `kerastl.tune`.
        search_space: As for `kerastl.tune`, applied to every kept backbone; a
            dict without ``trainable_blocks`` gets each backbone's default
            depths (`kerastl.SearchSpace.default_for`), as block counts differ.
        **tune_kwargs: The other `kerastl.tune` arguments.

    Returns:
        The best backbone's `kerastl.TuneResult`, with ``backbone`` (its name),
        ``ranking`` (the `kerastl.ranking.BackboneRanking`), ``backbone_results``
        (``{backbone: TuneResult}`` of the kept ones) and ``dropped_backbones``.

    Example:
        >>> result = kerastl.tune(data, backbone=["mobilenet_v2", "mobilenet", "resnet50"],
        ...                       keep_backbones=1, fine_tune_epochs=4)
        >>> result.backbone, result.ranking.names
    """
    from kerastl.data import ImageData
    from kerastl.ranking import rank_backbones
    from kerastl.training import FeatureCache
    from kerastl.tuning.tune import tune

    build_kwargs = dict(build_kwargs or {})
    candidates = _candidates(backbones, build_kwargs)
    keep = check_int("keep_backbones", keep_backbones, minimum=1)
    if rank_metric not in RANK_METRICS:
        raise ValueError(f"`rank_metric` must be one of {RANK_METRICS}. "
                         f"Received: rank_metric={rank_metric!r}")
    if isinstance(train, ImageData):
        train, validation_data = train.train, (
            train.validation if validation_data is None else validation_data)
    cache = feature_cache if feature_cache is not None else FeatureCache()
    ranking = rank_backbones((train, validation_data), candidates, metric=rank_metric,
                             reference=build_kwargs.get("weights", "imagenet") is not None,
                             feature_cache=cache)
    if verbose:
        print(ranking)
    kept = _kept(ranking, keep)
    results = {}
    shared = None if tune_kwargs.get("cache_features") is False else cache
    for backbone in kept:
        results[backbone] = tune(
            train, validation_data, backbone=backbone, build_kwargs=build_kwargs,
            search_space=_space_for(search_space, backbone), feature_cache=shared,
            algorithm=algorithm, verbose=verbose,
            project_name=_project(project_name, backbone, algorithm), **tune_kwargs)
    scored = [(b, r) for b, r in results.items() if r.best_score is not None]
    if scored:
        sign = 1 if scored[0][1].direction == "max" else -1
        best_name, best = max(scored, key=lambda item: sign * item[1].best_score)
    else:
        best_name, best = kept[0], results[kept[0]]
    best.backbone = best_name
    best.ranking = ranking
    best.backbone_results = results
    best.dropped_backbones = [c.backbone for c in candidates if c.backbone not in kept]
    return best


__all__ = ["tune_backbones"]
