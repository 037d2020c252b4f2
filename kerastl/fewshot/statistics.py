"""Per-class feature statistics: a linear discriminant that grows without old images.

`ClassStatistics` holds, for the pooled features of a model's training
images, each class's count and feature sum, the within-class scatter matrix
pooled over classes and the sum of the fourth powers of the centred feature
norms. That is all a linear discriminant with a shared, shrunk covariance
needs (streaming LDA, Hayes & Kanan 2020), and adding a class only adds to
these sums, so `kerastl.extend(method="slda")` can grow a classifier by new
classes with the head that all the images together would have given, while
the old images are gone. The statistics are features' moments, not images
(``D * D`` floats for ``D``-wide features: 13 MB for MobileNetV2's 1280).

The covariance is shrunk towards a multiple of the identity by the
Ledoit-Wolf formula (the same value as scikit-learn's ``ledoit_wolf`` on the
class-centred features), so no strength is chosen on any data.

Example:
    >>> stats = kerastl.fewshot.class_statistics(model, data.train)
    >>> stats.save("flowers_stats.npz")
    >>> later = kerastl.fewshot.ClassStatistics.load("flowers_stats.npz")
    >>> grown = kerastl.extend(model, new_photos, method="slda", statistics=later)
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from kerastl.fewshot._data import check_every_class, features


def ledoit_wolf(n: float, d: int, trace: float, squared: float, fourth: float) -> float:
    """Ledoit and Wolf's (2004) shrinkage of a covariance towards ``trace / D`` times I.

    The one definition of the formula, from the moments of `n` residual
    rows ``r_i`` of width `d` (the scatter ``S = sum r_i r_i^T``):

    Args:
        n: Number of rows.
        d: Their width.
        trace: ``trace(S)``, the sum of ``|r_i|^2``.
        squared: ``|S|_F^2`` (equal to ``|R R^T|_F^2``, the Gram matrix's).
        fourth: The sum of ``|r_i|^4``.

    Returns:
        The weight of the identity target, in [0, 1] (1 when the covariance
        already is a multiple of the identity).

    Example:
        >>> r = np.random.default_rng(0).normal(size=(20, 5))
        >>> s = r.T @ r
        >>> kerastl.fewshot.statistics.ledoit_wolf(20, 5, np.trace(s), np.sum(s * s),
        ...                                        np.sum(np.sum(r * r, 1) ** 2))
    """
    mu = trace / (n * d)
    frobenius = squared / (n * n)
    distance = frobenius - 2.0 * mu * trace / n + d * mu * mu
    spread = (fourth / n - frobenius) / n
    if distance <= 0.0:
        return 1.0
    return float(min(max(spread, 0.0), distance) / distance)


@dataclasses.dataclass
class ClassStatistics:
    """Counts, sums and pooled within-class scatter of the features of each class.

    Attributes:
        class_names: One name per class, in the head's order.
        counts: ``(C,)`` examples per class.
        sums: ``(C, D)`` sum of each class's features.
        scatter: ``(D, D)`` sum over examples of ``(x - mean_c)(x - mean_c)^T``.
        fourth: Sum over examples of ``|x - mean_c|^4`` (for the shrinkage).
    """

    class_names: list
    counts: np.ndarray
    sums: np.ndarray
    scatter: np.ndarray
    fourth: float

    @property
    def width(self) -> int:
        """The feature width ``D``."""
        return int(self.sums.shape[1])

    @classmethod
    def from_features(cls, x, y, class_names) -> ClassStatistics:
        """Statistics of features `x` ``(n, D)`` with labels `y` in ``0 .. C-1``.

        Every class must have at least one example.
        """
        x = np.asarray(x, "float64")
        y = np.asarray(y, "int64").reshape(-1)
        check_every_class("data", y, len(class_names), list(class_names))
        num = len(class_names)
        counts = np.bincount(y, minlength=num).astype("int64")
        sums = np.zeros((num, x.shape[1]), "float64")
        np.add.at(sums, y, x)
        centred = x - (sums / counts[:, None])[y]
        return cls(list(class_names), counts, sums, centred.T @ centred,
                   float(np.sum(np.sum(centred * centred, axis=1) ** 2)))

    def add(self, other: ClassStatistics) -> ClassStatistics:
        """Returns these classes followed by `other`'s (whose names must all be new)."""
        if other.width != self.width:
            raise ValueError(f"The new classes' features are {other.width} wide, the model's "
                             f"statistics {self.width}. Received: a width of {other.width}")
        taken = sorted(set(self.class_names) & set(other.class_names))
        if taken:
            raise ValueError(f"Class names must be new; {taken[0]!r} is already a class of "
                             f"the statistics. Received: {other.class_names!r:.300}")
        return ClassStatistics(self.class_names + list(other.class_names),
                               np.concatenate([self.counts, other.counts]),
                               np.concatenate([self.sums, other.sums]),
                               self.scatter + other.scatter, self.fourth + other.fourth)

    def shrinkage(self) -> float:
        """The Ledoit-Wolf shrinkage of the pooled covariance, in [0, 1] (`ledoit_wolf`)."""
        return ledoit_wolf(float(np.sum(self.counts)), self.width, float(np.trace(self.scatter)),
                           float(np.sum(self.scatter * self.scatter)), self.fourth)

    def covariance(self) -> np.ndarray:
        """The pooled within-class covariance, shrunk towards ``trace / D`` times the identity.

        With one example per class there is no within-class spread; the
        covariance is then the identity (nearest class mean, Euclidean).
        """
        n, d = float(np.sum(self.counts)), self.width
        cov = self.scatter / n
        if float(np.trace(cov)) <= 0.0:
            return np.eye(d)
        delta = self.shrinkage()
        return (1.0 - delta) * cov + delta * (np.trace(cov) / d) * np.eye(d)

    def linear_head(self) -> tuple[np.ndarray, np.ndarray]:
        """The discriminant's ``(kernel (D, C), bias (C,))`` as float32, equal class priors.

        A softmax over ``x @ kernel + bias`` is the posterior of Gaussian
        classes with the shared covariance and equal priors (a few photos of
        a new class do not make it rarer).
        """
        means = self.sums / self.counts[:, None]
        kernel = np.linalg.solve(self.covariance(), means.T)
        bias = -0.5 * np.sum(means.T * kernel, axis=0)
        return kernel.astype("float32"), bias.astype("float32")

    def save(self, path) -> None:
        """Writes the statistics to an ``.npz`` file (no pickled objects)."""
        path = os.fspath(path)
        with open(path, "wb") as f:
            np.savez(f, class_names=np.asarray(self.class_names, dtype=str), counts=self.counts,
                     sums=self.sums, scatter=self.scatter, fourth=np.float64(self.fourth))

    @classmethod
    def load(cls, path) -> ClassStatistics:
        """Reads statistics written by `save` (refusing pickled content)."""
        with np.load(os.fspath(path), allow_pickle=False) as f:
            missing = sorted({"class_names", "counts", "sums", "scatter", "fourth"} - set(f))
            if missing:
                raise ValueError(f"{os.fspath(path)!r} is not a kerastl ClassStatistics file "
                                 f"(no {missing[0]!r}). Received: path={os.fspath(path)!r}")
            stats = cls([str(n) for n in f["class_names"]], f["counts"].astype("int64"),
                        f["sums"].astype("float64"), f["scatter"].astype("float64"),
                        float(f["fourth"]))
        num, width = stats.sums.shape
        if (stats.counts.shape != (num,) or stats.scatter.shape != (width, width)
                or len(stats.class_names) != num or np.any(stats.counts < 1)):
            raise ValueError(f"{os.fspath(path)!r} holds inconsistent statistics (shapes "
                             f"{stats.counts.shape}, {stats.sums.shape}, "
                             f"{stats.scatter.shape}). Received: path={os.fspath(path)!r}")
        return stats


def class_statistics(model, data, *, class_names=None, feature_cache=None,
                     batch_size: int = 32) -> ClassStatistics:
    """Computes the `ClassStatistics` of `model`'s pooled features on labelled `data`.

    Compute them while the training images are at hand (they are the
    model's frozen features, so a fine-tuned backbone needs them after its
    fine-tuning); `kerastl.extend(method="slda")` then needs only them.

    Args:
        model: A kerastl classifier; its labels index its classes.
        data: Labelled images (or pooled embeddings) of every class of
            `model`, in any form `kerastl.fewshot.build` takes.
        class_names: Names of the classes (default: the model head's, else
            those found in `data`).
        feature_cache: A `kerastl.training.FeatureCache` to share backbone passes.
        batch_size: Images per backbone batch.

    Returns:
        `ClassStatistics`.

    Example:
        >>> stats = kerastl.fewshot.class_statistics(model, data.train)
        >>> stats.counts
        array([128, 128, 128])
    """
    from kerastl.accessors import get_head
    from kerastl.fewshot.builder import pooled_width

    head = get_head(model)
    found = features("data", model, data, width=pooled_width(model),
                     feature_cache=feature_cache, batch_size=batch_size)
    names = (list(class_names) if class_names is not None else head.class_names
             or found.class_names or [str(i) for i in range(head.num_outputs)])
    if len(names) != head.num_outputs:
        raise ValueError(f"`class_names` must name the model's {head.num_outputs} classes. "
                         f"Received: {len(names)} names")
    return ClassStatistics.from_features(found.x, found.y, names)


__all__ = ["ClassStatistics", "class_statistics"]
