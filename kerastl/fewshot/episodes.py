"""`kerastl.fewshot.evaluate`: N-way K-shot episodes, mean accuracy and a 95% interval.

The protocol of the few-shot literature: each episode draws `ways` classes,
`shots` support and `queries` query examples of each (without overlap),
builds a classifier from the support examples alone, and scores it on the
queries. The result is the mean accuracy over `episodes` episodes with the
95% confidence interval ``1.96 * std / sqrt(episodes)`` (std with ddof=1).
The features are computed once per dataset (`kerastl.training.FeatureCache`);
the episodes then run on them in NumPy, so 600 episodes take seconds.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from kerastl._validation import check_bool, check_int, check_one_of
from kerastl.fewshot import prototypes as proto
from kerastl.fewshot._data import features
from kerastl.fewshot.builder import base_model, pooled_width
from kerastl.fewshot.layers import AVERAGING, METRICS, default_scale

METHODS = ("prototypes", "baseline++", "logistic")
Z_95 = 1.959963984540054


@dataclasses.dataclass
class EpisodeResult:
    """Accuracy of a few-shot method over episodes.

    Attributes:
        mean: Mean query accuracy over the episodes.
        ci95: Half-width of the 95% confidence interval of `mean`.
        std: Standard deviation of the episode accuracies (ddof=1).
        accuracies: ``(episodes,)`` accuracy of each episode.
        ways, shots, queries, episodes: The protocol.
        method: The classifier built per episode.
    """

    mean: float
    ci95: float
    std: float
    accuracies: np.ndarray
    ways: int
    shots: int
    queries: int
    episodes: int
    method: str

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out.pop("accuracies")
        return out

    def __str__(self) -> str:
        return (f"{self.ways}-way {self.shots}-shot {self.method}: "
                f"{100 * self.mean:.2f} +- {100 * self.ci95:.2f} % ({self.episodes} episodes, "
                f"{self.queries} queries per class)")


def mean_ci(accuracies) -> tuple[float, float, float]:
    """Returns ``(mean, 95% half-width, std)`` of per-episode accuracies.

    Example:
        >>> kerastl.fewshot.episodes.mean_ci([0.8, 0.9, 1.0])[0]
        0.9
    """
    acc = np.asarray(accuracies, "float64")
    if acc.size == 0:
        raise ValueError("`accuracies` must hold at least one episode. Received: 0 episodes")
    std = float(acc.std(ddof=1)) if acc.size > 1 else 0.0
    return float(acc.mean()), Z_95 * std / math.sqrt(acc.size), std


def eligible_classes(y, shots: int, queries: int, ways: int):
    """The classes of labels `y` with at least ``shots + queries`` examples.

    Args:
        y: Integer labels of the examples episodes are drawn from.
        shots: Support examples per class.
        queries: Query examples per class.
        ways: Classes per episode.

    Returns:
        The eligible class ids (a NumPy array).

    Raises:
        ValueError: Fewer than `ways` classes are eligible.

    Example:
        >>> kerastl.fewshot.episodes.eligible_classes(labels, 5, 15, 5)
        array([0, 1, 2, 3, 4])
    """
    classes, counts = np.unique(y, return_counts=True)
    if ways > len(classes):
        raise ValueError(f"`ways` must be at most the number of classes in `data` "
                         f"({len(classes)}). Received: ways={ways}")
    keep = classes[counts >= shots + queries]
    if len(keep) < ways:
        raise ValueError(
            f"`shots` + `queries` ({shots} + {queries}) examples of each of {ways} classes are "
            f"needed, but only {len(keep)} classes of `data` have that many (smallest class: "
            f"{int(counts.min())}). Received: shots={shots}, queries={queries}")
    return keep


def sample_episode(rng, by_class: dict, classes, *, ways: int, shots: int, queries: int):
    """Returns ``(support, support_labels, query, query_labels)`` row indices of one episode.

    Labels are 0 .. ways-1, in the order the classes were drawn.
    """
    chosen = rng.choice(classes, size=ways, replace=False)
    support, query = [], []
    for c in chosen:
        rows = rng.choice(by_class[c], size=shots + queries, replace=False)
        support.append(rows[:shots])
        query.append(rows[shots:])
    s_labels = np.repeat(np.arange(ways), shots)
    q_labels = np.repeat(np.arange(ways), queries)
    return np.concatenate(support), s_labels, np.concatenate(query), q_labels


def classify_episode(xs, ys, xq, *, ways: int, method: str, metric: str, scale: float,
                     transductive: bool = False, fine_tune_steps: int = 100,
                     learning_rate: float = 0.01, l2: float = 1e-3) -> np.ndarray:
    """Returns the predicted classes of queries `xq` from support `xs`, `ys`."""
    if method == "logistic":
        from kerastl.training.linear_head import solve_linear

        kernel, bias = solve_linear("multiclass", ways, xs, ys, l2=l2)
        return (xq @ kernel + bias).argmax(axis=1)
    if metric == "mahalanobis":
        whitening = proto.fit_whitening(xs, ys, ways)
        xs, xq = proto.whiten(xs, whitening), proto.whiten(xq, whitening)
    metric = AVERAGING[metric]
    p = proto.class_prototypes(xs, ys, ways, metric=metric)
    if transductive:
        p = proto.refine_prototypes(p, xs, ys, xq, metric=metric, scale=scale)
    if method == "baseline++":
        p = proto.fit_cosine_classifier(xs, ys, p, scale=scale, steps=fine_tune_steps,
                                        learning_rate=learning_rate)
    return proto.predict_proba(xq, p, metric=metric, scale=scale).argmax(axis=1)


def run_episodes(x, y, *, ways: int, shots: int, queries: int = 15, episodes: int = 600,
                 seed: int = 0, method: str = "prototypes", metric: str = "cosine",
                 scale=None, transductive: bool = False, fine_tune_steps: int = 100,
                 learning_rate: float = 0.01, l2: float = 1e-3) -> EpisodeResult:
    """Runs `episodes` episodes on features `x` with labels `y` (see `evaluate`).

    Example:
        >>> kerastl.fewshot.episodes.run_episodes(x, y, ways=5, shots=1).mean
    """
    ways = check_int("ways", ways, minimum=2)
    shots = check_int("shots", shots, minimum=1)
    queries = check_int("queries", queries, minimum=1)
    episodes = check_int("episodes", episodes, minimum=1)
    check_one_of("method", method, METHODS)
    check_one_of("metric", metric, METRICS)
    check_bool("transductive", transductive)
    if method == "baseline++" and metric != "cosine":
        raise ValueError("method='baseline++' is a cosine classifier: use metric='cosine'. "
                         f"Received: metric={metric!r}")
    scale = default_scale(metric, scale)
    x, y = np.asarray(x, "float32"), np.asarray(y, "int64")
    classes = eligible_classes(y, shots, queries, ways)
    by_class = {c: np.flatnonzero(y == c) for c in classes}
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    acc = np.empty(episodes)
    for e in range(episodes):
        s, sy, q, qy = sample_episode(rng, by_class, classes, ways=ways, shots=shots,
                                      queries=queries)
        predicted = classify_episode(x[s], sy, x[q], ways=ways, method=method, metric=metric,
                                     scale=scale, transductive=transductive,
                                     fine_tune_steps=fine_tune_steps,
                                     learning_rate=learning_rate, l2=l2)
        acc[e] = np.mean(predicted == qy)
    mean, ci, std = mean_ci(acc)
    return EpisodeResult(mean, ci, std, acc, ways, shots, queries, episodes, method)


def evaluate(model_or_backbone, data, *, ways: int, shots: int, queries: int = 15,
             episodes: int = 600, seed: int = 0, method: str = "prototypes",
             metric: str = "cosine", scale=None, transductive: bool = False,
             fine_tune_steps: int = 100, learning_rate: float = 0.01, l2: float = 1e-3,
             input_shape=None, weights="imagenet", feature_cache=None,
             batch_size: int = 32) -> EpisodeResult:
    """Few-shot accuracy of a backbone: mean over N-way K-shot episodes with a 95% interval.

    Args:
        model_or_backbone: A kerastl model (its backbone's pooled features are
            used), a backbone name or a `keras.Model` backbone.
        data: Labelled images (or embeddings), in any form `kerastl.fewshot.build`
            takes; the features are computed once.
        ways: Classes per episode (at most the number of classes in `data`).
        shots: Support examples per class.
        queries: Query examples per class.
        episodes: Number of episodes.
        seed: Seed of the episode draws (the same seed draws the same episodes).
        method: ``"prototypes"`` (nearest class mean), ``"baseline++"``
            (cosine classifier initialised at the prototypes and trained on
            the support set) or ``"logistic"`` (an L2 logistic-regression
            probe, `kerastl.training.linear_head.solve_linear`, at strength `l2`).
        metric: ``"cosine"``, ``"euclidean"`` or ``"mahalanobis"`` (prototypes).
        scale: Score scale (default 10 cosine, 1 Euclidean, 0.5 Mahalanobis).
        transductive: Refine the prototypes with the episode's queries (soft k-means).
        fine_tune_steps: Adam steps of ``"baseline++"``.
        learning_rate: Adam step size of ``"baseline++"``.
        l2: Strength of the ``"logistic"`` probe.
        input_shape: Input size of a model built from a backbone name.
        weights: Weights of a model built from a backbone name.
        feature_cache: A `kerastl.training.FeatureCache` (reuse the features
            across calls: other shots, ways or methods).
        batch_size: Images per backbone batch.

    Returns:
        An `EpisodeResult` (``print`` it: "5-way 1-shot prototypes: <mean> +- <ci> %").

    Example:
        >>> result = kerastl.fewshot.evaluate("mobilenet_v2", data.validation, ways=5,
        ...                                   shots=1, episodes=600, seed=0)
        >>> result.mean, result.ci95
    """
    model = base_model(model_or_backbone, data, input_shape=input_shape, weights=weights)
    found = features("data", model, data, width=pooled_width(model),
                     feature_cache=feature_cache, batch_size=batch_size)
    return run_episodes(found.x, found.y, ways=ways, shots=shots, queries=queries,
                        episodes=episodes, seed=seed, method=method, metric=metric, scale=scale,
                        transductive=transductive, fine_tune_steps=fine_tune_steps,
                        learning_rate=learning_rate, l2=l2)


__all__ = ["EpisodeResult", "METHODS", "classify_episode", "eligible_classes", "evaluate",
           "mean_ci", "run_episodes", "sample_episode"]
