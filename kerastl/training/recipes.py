"""Training recipes as sequences of `Stage` objects.

A recipe says, stage by stage, how deep the backbone is unfrozen, for how
many epochs and at which learning rates. `kerastl.fit` runs the stages in
order; each stage starts from the best weights of the one before.

Recipes:

* ``"feature_extraction"``: one stage, head only (backbone frozen).
* ``"fine_tune"``: one stage, the top `trainable_blocks` blocks and the head
  trained from the start (the blocks at a 10x lower rate than the new head).
* ``"two_stage"``: head warm-up on the frozen backbone, then the top
  `trainable_blocks` blocks unfrozen (the TensorFlow transfer-learning tutorial
  and fastai ``fine_tune`` pattern). The second stage restarts the schedule:
  one epoch (half the stage, if shorter than two epochs) of warm-up from a
  tenth of the peak, then cosine decay to 0.
* ``"progressive"``: head warm-up, then the unfrozen part grows one group of
  blocks per stage (three groups up to `trainable_blocks`).
* ``"auto"``: decided from the data, not from a size threshold. With
  validation data it is ``"two_stage"``: the head (fitted in closed form on
  cached features, its regularisation chosen by cross-validation), then a
  fine-tuning stage that `kerastl.fit` keeps only when it clearly beats the
  head on the validation data (a sign test on the examples they disagree
  on, `kerastl.training.selection.keeps`; otherwise the head's weights are
  restored; when the head misses fewer than two validation examples the
  fine-tuning is not run). Without validation data nothing could judge a fine-tuning
  stage, so it is ``"feature_extraction"`` (the head chosen by k-fold
  cross-validation). Backbones that cannot be partly unfrozen (TF Hub) get
  ``"feature_extraction"``.
"""

from __future__ import annotations

import dataclasses

RECIPES = ("auto", "feature_extraction", "fine_tune", "two_stage", "progressive")

# Defaults, chosen on the fit benchmark (benchmarks/README.md). MobileNetV2 at
# 160x160, Adam(W) with frozen BatchNormalization, top 4 blocks, 6 fine-tuning
# epochs, validation accuracy on flowers_kaggle_227 by the peak rate of the
# fine-tuning stage: 1e-4: 0.89, 3e-4: 0.905, 5e-4: 0.90, 1e-3: 0.925 (head
# only: 0.87-0.89; one image is 0.005). The tutorial's 10x lower rate is too
# low with a warm-up and cosine decay, so the fine-tuning stage uses the same
# peak rate as the head stage (FINE_TUNE_LR_FACTOR = 1).
HEAD_EPOCHS_CACHED = 30
HEAD_EPOCHS_UNCACHED = 10
FINE_TUNE_EPOCHS = 6
HEAD_LEARNING_RATE = 1e-3
FINE_TUNE_LR_FACTOR = 1.0
NEW_HEAD_BACKBONE_LR_FACTOR = 0.1
DEFAULT_TRAINABLE_BLOCKS = 4
PROGRESSIVE_GROUPS = 3


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of a recipe.

    Attributes:
        name: ``"head"``, ``"fine_tune"`` or ``"unfreeze_<k>"``.
        trainable_blocks: Number of top backbone blocks trained (0: head only).
        epochs: Epochs of the stage.
        learning_rate: Peak learning rate of the head.
        backbone_learning_rate: Peak learning rate of the top backbone block
            (None: `learning_rate`).
        layer_decay: Each block below the top one gets this factor times the
            rate of the block above it (None: no decay).
        warmup_epochs: Epochs of linear warm-up before the cosine decay.
    """

    name: str
    trainable_blocks: int
    epochs: int
    learning_rate: float
    backbone_learning_rate: float | None = None
    layer_decay: float | None = None
    warmup_epochs: float = 0.0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def resolve_recipe(recipe: str, *, has_validation: bool, can_unfreeze: bool) -> str:
    """Returns the concrete recipe that ``recipe`` (maybe ``"auto"``) stands for.

    Args:
        recipe: One of `RECIPES`.
        has_validation: Whether there is validation data to judge fine-tuning on.
        can_unfreeze: Whether the backbone can be partly unfrozen.

    Returns:
        A recipe other than ``"auto"``.

    Example:
        >>> kerastl.training.recipes.resolve_recipe("auto", has_validation=False,
        ...                                         can_unfreeze=True)
        'feature_extraction'
    """
    if recipe != "auto":
        return recipe
    if not can_unfreeze or not has_validation:
        return "feature_extraction"
    return "two_stage"


def _depth(trainable_blocks, num_blocks: int) -> int:
    if trainable_blocks is None:
        return min(DEFAULT_TRAINABLE_BLOCKS, num_blocks)
    if trainable_blocks == "all":
        return num_blocks
    return int(trainable_blocks)


def progressive_depths(depth: int) -> list[int]:
    """Unfreeze depths of the progressive stages: about thirds of `depth`."""
    count = min(PROGRESSIVE_GROUPS, depth)
    depths = sorted({max(1, round(depth * (i + 1) / count)) for i in range(count)})
    return depths


def plan_stages(recipe: str, *, num_blocks: int, head_cached: bool, epochs=None,
                fine_tune_epochs=None, learning_rate=None, backbone_learning_rate=None,
                layer_decay=None, trainable_blocks=None) -> list[Stage]:
    """Returns the stages of a concrete recipe with defaults filled in.

    Args:
        recipe: A recipe other than ``"auto"`` (see `resolve_recipe`).
        num_blocks: Number of backbone blocks.
        head_cached: Whether head-only stages train on cached features (their
            default epochs are then `HEAD_EPOCHS_CACHED`, not `HEAD_EPOCHS_UNCACHED`).
        epochs: Epochs of the first stage (head stage, or the only stage).
        fine_tune_epochs: Epochs of each later stage.
        learning_rate: Peak head learning rate of the first stage; later stages
            use `FINE_TUNE_LR_FACTOR` times it (restarted with a warm-up).
        backbone_learning_rate: Peak rate of the top backbone block in stages
            that train it (None: the stage's head rate).
        layer_decay: Layer-wise decay factor for backbone blocks, or None.
        trainable_blocks: Unfreeze depth of the (last) fine-tuning stage
            (None: `DEFAULT_TRAINABLE_BLOCKS`).

    Returns:
        A list of `Stage`.

    Example:
        >>> stages = kerastl.training.plan_stages("two_stage", num_blocks=18, head_cached=True)
        >>> [(s.name, s.trainable_blocks) for s in stages]
        [('head', 0), ('fine_tune', 4)]
    """
    lr = HEAD_LEARNING_RATE if learning_rate is None else learning_rate
    fine_lr = lr * FINE_TUNE_LR_FACTOR
    depth = _depth(trainable_blocks, num_blocks)
    head_epochs = HEAD_EPOCHS_CACHED if head_cached else HEAD_EPOCHS_UNCACHED
    ft_epochs = FINE_TUNE_EPOCHS if fine_tune_epochs is None else fine_tune_epochs

    def tuned(name, blocks, n_epochs, rate, backbone_rate):
        return Stage(name, blocks, n_epochs, rate, backbone_rate, layer_decay,
                     warmup_epochs=min(1.0, n_epochs / 2))

    if recipe == "feature_extraction" or (recipe != "fine_tune" and depth == 0):
        return [Stage("head", 0, head_epochs if epochs is None else epochs, lr)]
    if recipe == "fine_tune":
        # A new head next to pretrained blocks: the head at `lr`, the blocks 10x lower.
        backbone_rate = (lr * NEW_HEAD_BACKBONE_LR_FACTOR if backbone_learning_rate is None
                         else backbone_learning_rate)
        return [tuned("fine_tune", depth, FINE_TUNE_EPOCHS if epochs is None else epochs, lr,
                      backbone_rate)]
    head = Stage("head", 0, head_epochs if epochs is None else epochs, lr)
    if recipe == "two_stage":
        return [head, tuned("fine_tune", depth, ft_epochs, fine_lr, backbone_learning_rate)]
    return [head] + [tuned(f"unfreeze_{d}", d, ft_epochs, fine_lr, backbone_learning_rate)
                     for d in progressive_depths(depth)]


__all__ = ["RECIPES", "Stage", "plan_stages", "resolve_recipe"]
