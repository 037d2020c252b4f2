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

from kerastl._lazy import attributes

# Public name -> module. Loaded on first use (PEP 562), so that TensorFlow-free
# parts (``kerastl.training.recipes``, which the CLI reads) import without it.
_LAZY = {
    "DEFAULT_MEMORY_LIMIT": "cache", "CachedData": "cache", "FeatureCache": "cache",
    "BestWeights": "callbacks", "compile_for_evaluation": "fitting", "fit": "fitting",
    "ScaledAdamW": "optim", "block_multipliers": "optim", "warmup_cosine": "optim",
    "RECIPES": "recipes", "Stage": "recipes", "plan_stages": "recipes",
    "resolve_recipe": "recipes", "FitReport": "report", "StageReport": "report",
}


__getattr__, __dir__ = attributes(__name__, _LAZY)


__all__ = [
    "BestWeights", "CachedData", "DEFAULT_MEMORY_LIMIT", "FeatureCache", "FitReport", "RECIPES",
    "ScaledAdamW", "Stage", "StageReport", "block_multipliers", "compile_for_evaluation", "fit",
    "plan_stages", "resolve_recipe", "warmup_cosine",
]
