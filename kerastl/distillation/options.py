"""Validation of `kerastl.distillation.distill`'s arguments."""

from __future__ import annotations

import dataclasses

from kerastl._validation import check_float, check_int, check_one_of
from kerastl.distillation.views import AUGMENTS
from kerastl.training.options import FitOptions, check_options

DISTILL_RECIPES = ("two_stage", "fine_tune", "progressive", "feature_extraction")
STARTS = ("fit", "student")
# Defaults: see docs/distill.md ("How the defaults were chosen") and the sweep in
# benchmarks/README.md. The first stage is kerastl.fit's (labels) or 30 distilled
# epochs of the head on cached pooled features (no labels, as fit's cached head
# epochs); the distillation stage trains fit's fine-tuning depth (None: 4 blocks) on
# the cached frozen prefix.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.9
DEFAULT_VIEWS = 4
DEFAULT_HEAD_EPOCHS = 30
DEFAULT_FINE_TUNE_EPOCHS = 12
DEFAULT_TRAINABLE_BLOCKS = None


@dataclasses.dataclass(frozen=True)
class DistillOptions(FitOptions):
    """`FitOptions` (the arguments `distill` shares with `kerastl.fit`) plus distillation's."""

    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    views: int = DEFAULT_VIEWS
    augment: str = "crop_flip"
    start: str = "fit"


def check_distill_options(*, temperature, alpha, views, augment, recipe, start, refit_head,
                          **fit_kwargs):
    """Returns `DistillOptions`, or raises ValueError naming the bad argument.

    The arguments shared with `kerastl.fit` are checked by
    `kerastl.training.options.check_options`, with the same messages.
    """
    temperature = check_float("temperature", temperature, minimum=0.0, min_inclusive=False)
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    views = check_int("views", views, minimum=1, maximum=64)
    check_one_of("augment", augment, AUGMENTS)
    check_one_of("recipe", recipe, DISTILL_RECIPES)
    check_one_of("start", start, STARTS)
    fit = check_options(recipe=recipe, head_solver="gradient", refit_head=refit_head,
                        shuffle=True, cache_features=False, augment_passes=0,
                        cache_memory_limit=0, dtype_policy=None, **fit_kwargs)
    return DistillOptions(**dataclasses.asdict(fit), temperature=temperature, alpha=alpha,
                          views=views, augment=augment, start=start)


__all__ = ["DISTILL_RECIPES", "STARTS", "DistillOptions", "check_distill_options"]
