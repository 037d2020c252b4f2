"""Training kerastl models: `kerastl.fit`, its recipes, feature cache and report.

`fit` runs a recipe (`recipes`) stage by stage. Frozen-backbone stages train
the head on cached pooled features; stages that unfreeze the top blocks
train them on the cached output of the frozen bottom blocks
(`FeatureCache`). A `FeatureCache` can be shared between calls (as
`kerastl.tune` does): ``cache.backbone_batches`` counts the image batches
that went through the backbone, so reuse is visible.

Example:
    >>> data = kerastl.data.from_directory("flowers", image_size=160)
    >>> model = kerastl.build("mobilenet_v2", data.num_classes, input_shape=160)
    >>> report = kerastl.training.fit(model, data, recipe="two_stage")
    >>> report.best["val_accuracy"]
"""

from kerastl.training.cache import DEFAULT_MEMORY_LIMIT, CachedData, FeatureCache
from kerastl.training.callbacks import BestWeights
from kerastl.training.fit import compile_for_evaluation, fit
from kerastl.training.optim import ScaledAdamW, block_multipliers, warmup_cosine
from kerastl.training.recipes import RECIPES, Stage, plan_stages, resolve_recipe
from kerastl.training.report import FitReport, StageReport

__all__ = [
    "BestWeights", "CachedData", "DEFAULT_MEMORY_LIMIT", "FeatureCache", "FitReport", "RECIPES",
    "ScaledAdamW", "Stage", "StageReport", "block_multipliers", "compile_for_evaluation", "fit",
    "plan_stages", "resolve_recipe", "warmup_cosine",
]
