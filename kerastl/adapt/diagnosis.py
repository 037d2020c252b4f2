"""`kerastl.adapt.shift_report`: is there a domain shift between two sets of images?

Three measures on the model's pooled features (one backbone pass per set,
through the feature cache):

* a domain classifier: an L2 logistic regression (`kerastl.training.linear_head`,
  strength by cross-validation) telling source from target features, scored
  by k-fold held-out accuracy on a balanced sample (chance is 0.5);
* the multi-kernel MMD (`kerastl.adapt.mmd_loss`) between the two sets, next to
  the MMD between two random halves of the source (its no-shift level);
* the source-only model's mean confidence on each set.

"No shift" means the domain classifier is within noise of chance:
``accuracy <= 0.5 + max(0.05, 3 * sqrt(0.25 / n))`` for ``n`` held-out images.
"""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np

from kerastl._json import json_default
from kerastl.adapt import features as feats
from kerastl.adapt.losses import mmd_loss
from kerastl.training import linear_head

FOLDS = 5
MAX_PER_DOMAIN = 1000


@dataclasses.dataclass
class ShiftReport:
    """What `shift_report` measured.

    Attributes:
        domain_accuracy: Held-out accuracy of the domain classifier (0.5: no shift).
        threshold: Accuracy above which the shift counts as real.
        shift: Whether ``domain_accuracy > threshold``.
        mmd: Squared multi-kernel MMD between source and target features.
        mmd_within_source: The same between two random halves of the source.
        source_confidence: Mean probability of the predicted class on the source.
        target_confidence: The same on the target.
        num_source: Source images used.
        num_target: Target images used.
    """

    domain_accuracy: float
    threshold: float
    shift: bool
    mmd: float
    mmd_within_source: float
    source_confidence: float
    target_confidence: float
    num_source: int
    num_target: int

    @property
    def verdict(self) -> str:
        """One line: shift or no shift, and why."""
        if not self.shift:
            return (f"no shift: a domain classifier tells source from target at "
                    f"{self.domain_accuracy:.3f} (chance 0.5, noise up to {self.threshold:.3f}); "
                    "adaptation is not needed")
        return (f"domain shift: a domain classifier tells source from target at "
                f"{self.domain_accuracy:.3f} (> {self.threshold:.3f}); confidence "
                f"{self.source_confidence:.3f} on source, {self.target_confidence:.3f} on target")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["verdict"] = self.verdict
        return out

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **{"default": json_default, **kwargs})

    def __str__(self) -> str:
        return "\n".join([
            f"kerastl.adapt.shift_report: {self.num_source} source, "
            f"{self.num_target} target images",
            f"  domain classifier accuracy: {self.domain_accuracy:.3f} (threshold "
            f"{self.threshold:.3f})",
            f"  MMD: {self.mmd:.4g} (between source halves: {self.mmd_within_source:.4g})",
            f"  confidence: source {self.source_confidence:.3f}, target "
            f"{self.target_confidence:.3f}",
            f"  {self.verdict}"])


def _balanced(xs, xt, rng):
    n = min(len(xs), len(xt), MAX_PER_DOMAIN)
    xs = xs[rng.choice(len(xs), n, replace=False)]
    xt = xt[rng.choice(len(xt), n, replace=False)]
    return np.concatenate([xs, xt]), np.concatenate([np.zeros(n), np.ones(n)]).astype("int64")


def domain_accuracy(source_features, target_features, *, seed=0) -> tuple[float, int]:
    """Held-out accuracy of a linear domain classifier on a balanced sample, and its size.

    The strength is chosen by cross-validation (`fit_linear`); the accuracy
    is then measured by `FOLDS`-fold cross-validation at that strength.
    """
    rng = np.random.default_rng(seed)
    x, y = _balanced(np.asarray(source_features), np.asarray(target_features), rng)
    if len(x) < 2 * 2:
        raise ValueError("The shift report needs at least 2 source and 2 target images. "
                         f"Received: {len(source_features)} source, {len(target_features)} "
                         "target images")
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = ((x - mean) / std).astype("float32")
    l2 = linear_head.fit_linear("binary", 1, x, y, seed=seed).l2
    k = int(min(FOLDS, len(x) // 2))
    fold = np.empty(len(x), "int64")
    for c in (0, 1):
        members = rng.permutation(np.flatnonzero(y == c))
        fold[members] = np.arange(len(members)) % k
    correct = 0
    for f in range(k):
        train, held = fold != f, fold == f
        kernel, bias = linear_head.solve_linear("binary", 1, x[train], y[train], l2=l2)
        z = x[held] @ kernel[:, 0] + bias[0]
        correct += int(((z > 0).astype("int64") == y[held]).sum())
    return correct / len(x), len(x)


def _mmd(a, b) -> float:
    return float(mmd_loss(np.asarray(a, "float32"), np.asarray(b, "float32")))


def _sample(x, rng, limit=MAX_PER_DOMAIN):
    return x if len(x) <= limit else x[rng.choice(len(x), limit, replace=False)]


def shift_report(model, source, target, *, feature_cache=None, seed: int = 0) -> ShiftReport:
    """Measures the shift between source and target images on the model's features.

    Args:
        model: A kerastl classifier (trained on the source for the confidences).
        source: Source images: labelled data (`kerastl.fit`'s forms) or any
            `target` form.
        target: Target images: a folder, an array, a dataset (labels ignored).
        feature_cache: A `kerastl.training.FeatureCache` to share.
        seed: Seed of the balanced sample and folds.

    Returns:
        A `ShiftReport` (``print(report)``; ``report.shift``).

    Example:
        >>> report = kerastl.adapt.shift_report(model, data.train, "phone_photos/")
        >>> report.shift, report.domain_accuracy
        (True, 0.97)
    """
    from kerastl.adapt.data import as_target

    task = feats.check_classifier(model)
    cache = feats.check_cache(feature_cache)
    source = as_target(source, input_shape=model.input_shape) if isinstance(source, str) else (
        _as_images(source, model))
    target = as_target(target, input_shape=model.input_shape)
    xs, _ = feats.cached(cache, model, source)
    xt, _ = feats.cached(cache, model, target)
    accuracy, n = domain_accuracy(xs, xt, seed=seed)
    threshold = 0.5 + max(0.05, 3.0 * math.sqrt(0.25 / n))
    rng = np.random.default_rng(seed)
    halves = rng.permutation(len(xs))
    within = _mmd(_sample(xs[halves[: len(xs) // 2]], rng), _sample(xs[halves[len(xs) // 2:]], rng))
    return ShiftReport(
        domain_accuracy=accuracy, threshold=threshold, shift=accuracy > threshold,
        mmd=_mmd(_sample(xs, rng), _sample(xt, rng)), mmd_within_source=within,
        source_confidence=feats.confidence(task, feats.predict_features(model, xs)),
        target_confidence=feats.confidence(task, feats.predict_features(model, xt)),
        num_source=len(xs), num_target=len(xt))


def _as_images(source, model):
    """Labelled source data as it is (the cache shares it with `kerastl.fit`), else images."""
    from kerastl.adapt.data import as_source, as_target
    from kerastl.training.inputs import Data

    if isinstance(source, Data):
        return source
    try:
        return as_source("source", source, model=model)
    except (TypeError, ValueError):
        return as_target(source, input_shape=model.input_shape)


__all__ = ["ShiftReport", "domain_accuracy", "shift_report"]
