"""`kerastl.rank_backbones`: which backbone to fine-tune, judged on frozen features.

Each candidate is built with `kerastl.build`, its pooled features on the
labelled images come from a `kerastl.training.FeatureCache` (shared between
candidates, calls and `kerastl.fit` / `kerastl.tune`: a backbone whose
weights and input were seen before costs no image pass), and a score is
computed from them without any training of the backbone:

* ``metric="logme"``: LogME (`kerastl.ranking.logme`), the evidence of a
  Bayesian linear model (You et al. 2021);
* ``metric="linear_probe"``: the cross-validated log-loss of kerastl's own
  closed-form linear head (`kerastl.training.linear_head.fit_linear`), negated
  so that higher is better.

A random-initialised copy of the best candidate is always scored as the
from-scratch reference; a pretrained candidate that does not beat it by
`margin` is marked, and when the best one does not, a
`NegativeTransferWarning` says that transfer from these backbones may hurt.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

from kerastl._validation import check_bool, check_float, check_int, check_one_of
from kerastl.ranking.candidates import Candidate, as_candidates
from kerastl.ranking.logme import logme
from kerastl.ranking.table import BackboneRanking, NegativeTransferWarning, RankedBackbone

METRICS = ("logme", "linear_probe")
DEFAULT_MARGIN = 0.05
_NO_RANDOM_INIT = ("hub:",)  # TF Hub SavedModels bring fixed weights


def _data_splits(data, image_size):
    """Returns ``[(dataset, source)]`` of the labelled splits, and the data's image side."""
    import tensorflow as tf

    from kerastl.data import ImageData, from_directory

    if isinstance(data, (str, os.PathLike)):
        data = from_directory(data, image_size=image_size or 224, shuffle=False)
    if isinstance(data, ImageData):
        splits = [s for s in (data.train, data.validation) if s is not None]
        return [(s, s) for s in splits], int(data.image_size[0])
    if isinstance(data, tf.data.Dataset):
        data = (data,)
    if isinstance(data, (tuple, list)) and data and all(
            isinstance(d, tf.data.Dataset) for d in data if d is not None):
        splits = [d for d in data if d is not None]
        return [(d, d) for d in splits], int(splits[0].element_spec[0].shape[1] or 0) or None
    raise TypeError("`data` must be a kerastl.data.ImageData, an image folder, a "
                    "tf.data.Dataset of (images, labels) batches, or a tuple of them "
                    "(training, validation). "
                    f"Received: data={type(data).__name__}")


def sample_per_class(batches, max_per_class: int, seed: int):
    """``(images, labels)`` arrays: a seeded uniform choice of at most `max_per_class` per class.

    Reservoir sampling (Vitter's algorithm R) per class over ``(images,
    labels)`` batches, read once: memory for the sample only.

    Example:
        >>> x, y = kerastl.ranking.rank.sample_per_class([(images, labels)], 10, seed=0)
    """
    rng = np.random.default_rng(seed)
    kept, seen = {}, {}
    for batch in batches:
        labels = np.asarray(batch[1])
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError("`max_per_class` needs integer class labels (a multiclass "
                             f"task). Received: labels of shape {labels.shape[1:]} and "
                             f"dtype {labels.dtype}")
        for image, label in zip(np.asarray(batch[0]), labels.tolist()):
            count = seen.get(label, 0)
            seen[label] = count + 1
            slot = count if count < max_per_class else int(rng.integers(0, count + 1))
            if slot < max_per_class:
                pool = kept.setdefault(label, [])
                if slot < len(pool):
                    pool[slot] = image
                else:
                    pool.append(image)
    classes = sorted(kept)
    x = np.stack([image for c in classes for image in kept[c]])
    y = np.concatenate([np.full(len(kept[c]), c, "int64") for c in classes])
    return x, y


def per_class_sample(splits, max_per_class: int, seed: int):
    """The labelled splits cut to at most `max_per_class` images of each class.

    Every split is read once (`sample_per_class` over all splits together);
    the sample is one array dataset, which every candidate then reads (and
    caches) instead of the full data.

    Args:
        splits: ``[(dataset, source)]`` of ``(images, integer labels)`` batches.
        max_per_class: Images kept per class at most.
        seed: Seed of the choice.

    Returns:
        ``[(dataset, dataset)]``: one split, the sample.

    Raises:
        ValueError: Labels that are not integer classes.
    """
    import tensorflow as tf

    x, y = sample_per_class((batch for dataset, _ in splits for batch in dataset),
                            max_per_class, seed)
    sample = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    return [(sample, sample)]


def _resized(dataset, size):
    import tensorflow as tf

    shape = dataset.element_spec[0].shape
    if shape[1] == size and shape[2] == size:
        return dataset
    return dataset.map(lambda x, *rest: (tf.image.resize(x, (size, size)),) + tuple(rest),
                       num_parallel_calls=tf.data.AUTOTUNE)


def _features(candidate, splits, cache, seed):
    """Builds the candidate and returns (model, features, labels) from the cache."""
    import keras

    import kerastl
    from kerastl.training.graph import pooled_cut

    keras.utils.set_random_seed(seed)  # a random-init candidate gets the same weights
    model = kerastl.build(candidate.backbone, 2, input_shape=candidate.image_size,
                          weights=candidate.weights,
                          backbone_kwargs=candidate.backbone_kwargs or None)
    cut = pooled_cut(model)
    parts = [cache.get(model, _resized(ds, candidate.image_size), cut, source=source,
                       namespace=("rank_backbones", candidate.key()))
             for ds, source in splits]
    features = np.concatenate([p.arrays[0][: p.num_examples] for p in parts])
    labels = np.concatenate([p.labels for p in parts])
    return model, features, labels


def _task(labels) -> str:
    if labels.ndim == 1 or labels.shape[-1] == 1:
        return "multiclass" if np.issubdtype(labels.dtype, np.integer) else "regression"
    return "multilabel" if set(np.unique(labels)) <= {0, 1} else "regression"


def score_features(features, labels, metric: str, *, seed: int = 0) -> float:
    """Returns the ranking score of frozen `features` for `labels` (higher is better).

    Args:
        features: ``(n, d)`` pooled features.
        labels: Integer classes ``(n,)``, multi-hot or real targets ``(n, k)``.
        metric: ``"logme"`` or ``"linear_probe"``.
        seed: Seed of the linear probe's cross-validation folds.

    Example:
        >>> kerastl.ranking.score_features(features, labels, "linear_probe")
        -0.31
    """
    from kerastl.training.linear_head import fit_linear

    check_one_of("metric", metric, METRICS)
    labels = np.asarray(labels)
    if metric == "logme":
        return logme(features, labels)
    task = _task(labels)
    outputs = int(labels.max()) + 1 if task == "multiclass" else labels.reshape(
        len(labels), -1).shape[1]
    fit = fit_linear(task, outputs, features, labels, seed=seed)
    return -float(fit.scores[fit.l2])


def _score_row(candidate, splits, cache, metric, seed, label=None) -> RankedBackbone:
    from kerastl.accessors import get_backbone

    batches = cache.backbone_batches
    start = time.perf_counter()
    model, features, labels = _features(candidate, splits, cache, seed)
    feature_seconds = time.perf_counter() - start
    start = time.perf_counter()
    score = score_features(features, labels, metric, seed=seed)
    score_seconds = time.perf_counter() - start
    params = int(get_backbone(model).count_params())
    head = int(features.shape[1]) * 2
    return RankedBackbone(
        name=label or candidate.name, backbone=candidate.backbone,
        image_size=int(candidate.image_size), score=score, feature_seconds=feature_seconds,
        score_seconds=score_seconds, num_params=params, tflite_bytes=4 * (params + head),
        tflite_int8_bytes=params + head, reference=candidate.weights is None and label is not None,
        backbone_batches=cache.backbone_batches - batches, num_examples=len(labels))


def _resolve(candidates, image_size, data_size) -> list[Candidate]:
    out = []
    for c in as_candidates(candidates):
        size = c.image_size or image_size or data_size
        if size is None:
            raise ValueError(f"Pass `image_size`: candidate {c.name!r} has no size and the "
                             "data's image size is unknown. Received: image_size=None")
        out.append(c if c.image_size else c.with_size(size))
    as_candidates(out)  # 'mobilenet_v2' and 'mobilenet_v2@224' may be the same candidate
    return out


def _reference(rows, candidates) -> Candidate | None:
    """The random-init copy of the best candidate that can be built without weights."""
    by_name = {c.name: c for c in candidates}
    for row in sorted(rows, key=lambda r: -r.score):
        c = by_name[row.name]
        if c.weights is not None and not c.backbone.startswith(_NO_RANDOM_INIT):
            return Candidate(c.backbone, c.image_size, dict(c.backbone_kwargs), None)
    return None


def _check_transfer(rows, margin) -> list[str]:
    reference = next((r for r in rows if r.reference), None)
    if reference is None:
        return []
    for row in rows:
        row.negative_transfer = (not row.reference and
                                 row.score <= reference.score + margin)
    pretrained = [r for r in rows if not r.reference]
    if pretrained and all(r.negative_transfer for r in pretrained):
        return [f"no pretrained backbone beats its random-initialised reference "
                f"{reference.name!r} by more than margin={margin:g} "
                f"(best {pretrained[0].score:.4f} vs {reference.score:.4f}): "
                "these features may transfer badly to this data (negative transfer); "
                "consider other backbones or training more of the network."]
    return []


def rank_backbones(data, candidates, *, image_size=None, metric: str = "logme",
                   reference: bool = True, margin: float = DEFAULT_MARGIN,
                   max_per_class=None, feature_cache=None, seed: int = 0) -> BackboneRanking:
    """Scores each candidate backbone's frozen features on the data, best first.

    Nothing is fine-tuned: each backbone runs once over the labelled images
    (training + validation; never a test split), and the score says how well
    a linear model on its features explains the labels. On a large dataset,
    `max_per_class` ranks on a sample: the ranking's cost then stops growing
    with the data while the fine-tuning it saves does not.

    Args:
        data: A `kerastl.data.ImageData` (its train and validation splits), an
            image folder (loaded with `kerastl.data.from_directory`), a
            `tf.data.Dataset` of ``(images, labels)`` batches, or a tuple of
            datasets (``(train, validation)``).
        candidates: Backbone names as `kerastl.build` takes them, text forms
            ``"name(key=value)@size"`` (a comma-separated string works too), or
            `kerastl.ranking.Candidate` objects. No duplicates.
        image_size: Input side of candidates without their own ``@size``
            (images are resized); default the data's image size.
        metric: ``"logme"`` (default) or ``"linear_probe"``.
        reference: Score a random-initialised copy of the best candidate.
        margin: How much (in the metric's units) a pretrained candidate must
            beat the reference by; otherwise it is marked as possible negative
            transfer.
        max_per_class: None (every labelled image), or score every candidate
            on the same seeded sample of at most this many images per class
            (integer class labels only; the sample is drawn once, over
            training and validation images together).
        feature_cache: A `kerastl.training.FeatureCache` to reuse (and fill).
        seed: Seed of random initialisation, of the linear probe's folds and
            of the `max_per_class` sample.

    Returns:
        A `kerastl.ranking.BackboneRanking` (prints as a table).

    Raises:
        ValueError: Bad options, an empty or repeated candidate list.

    Example:
        >>> data = kerastl.data.from_directory("flowers", image_size=160, validation_split=0.2)
        >>> ranking = kerastl.rank_backbones(data, ["mobilenet_v2", "mobilenet(alpha=0.25)"])
        >>> print(ranking)
    """
    from kerastl.training import FeatureCache

    metric = check_one_of("metric", metric, METRICS)
    check_bool("reference", reference)
    margin = check_float("margin", margin, minimum=0.0)
    seed = check_int("seed", seed, minimum=0)
    if image_size is not None:
        image_size = check_int("image_size", image_size, minimum=1)
    if max_per_class is not None:
        max_per_class = check_int("max_per_class", max_per_class, minimum=1)
    if feature_cache is not None and not isinstance(feature_cache, FeatureCache):
        raise ValueError("`feature_cache` must be a kerastl.training.FeatureCache or None. "
                         f"Received: feature_cache={feature_cache!r}")
    cache = feature_cache if feature_cache is not None else FeatureCache()
    splits, data_size = _data_splits(data, image_size)
    items = _resolve(candidates, image_size, data_size)
    if max_per_class is not None:
        splits = per_class_sample(splits, max_per_class, seed)
    rows = [_score_row(c, splits, cache, metric, seed) for c in items]
    ref = _reference(rows, items) if reference else None
    if ref is not None:
        rows.append(_score_row(ref, splits, cache, metric, seed, label=ref.name))
    rows.sort(key=lambda r: -r.score)
    notes = _check_transfer(rows, margin)
    for note in notes:
        warnings.warn(note, NegativeTransferWarning, stacklevel=2)
    return BackboneRanking(rows=rows, metric=metric, margin=margin,
                           num_examples=rows[0].num_examples, warnings=notes)


__all__ = ["METRICS", "rank_backbones", "score_features"]
