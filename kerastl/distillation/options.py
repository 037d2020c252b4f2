"""Validation of `kerastl.distillation.distill`'s arguments."""

from __future__ import annotations

import dataclasses

from kerastl._validation import check_float, check_int, check_one_of
from kerastl.distillation.views import AUGMENTS
from kerastl.training.options import FitOptions, check_options

DISTILL_RECIPES = ("two_stage", "fine_tune", "progressive", "feature_extraction")
# Defaults, set a priori (not tuned: the benchmark has not measured alternatives):
# the head in closed form (or 2 distilled epochs without labels), then every block
# of the (small) student distilled for 12 epochs on 4 fixed views; T=2 and
# alpha=0.9 as commonly used since Hinton et al. 2015.
DEFAULT_TEMPERATURE = 2.0
DEFAULT_ALPHA = 0.9
DEFAULT_VIEWS = 4
DEFAULT_HEAD_EPOCHS = 2
DEFAULT_FINE_TUNE_EPOCHS = 12
DEFAULT_TRAINABLE_BLOCKS = "all"


@dataclasses.dataclass(frozen=True)
class DistillOptions(FitOptions):
    """`FitOptions` (the arguments `distill` shares with `kerastl.fit`) plus distillation's."""

    temperature: float = DEFAULT_TEMPERATURE
    alpha: float = DEFAULT_ALPHA
    views: int = DEFAULT_VIEWS
    augment: str = "crop_flip"


def check_distill_options(*, temperature, alpha, views, augment, recipe, **fit_kwargs):
    """Returns `DistillOptions`, or raises ValueError naming the bad argument.

    The arguments shared with `kerastl.fit` are checked by
    `kerastl.training.options.check_options`, with the same messages.
    """
    temperature = check_float("temperature", temperature, minimum=0.0, min_inclusive=False)
    alpha = check_float("alpha", alpha, minimum=0.0, maximum=1.0)
    views = check_int("views", views, minimum=1, maximum=64)
    check_one_of("augment", augment, AUGMENTS)
    check_one_of("recipe", recipe, DISTILL_RECIPES)
    fit = check_options(recipe=recipe, head_solver="gradient", refit_head=False,
                        shuffle=True, cache_features=False, augment_passes=0,
                        cache_memory_limit=0, dtype_policy=None, **fit_kwargs)
    return DistillOptions(**dataclasses.asdict(fit), temperature=temperature, alpha=alpha,
                          views=views, augment=augment)


__all__ = ["DISTILL_RECIPES", "DistillOptions", "check_distill_options"]
