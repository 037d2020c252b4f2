"""Frozen-backbone activations computed once for `kerastl.multitask.fit` (kerastl's FeatureCache).

While the bottom of the shared backbone is frozen, its outputs on each task's
images do not change, so `kerastl.multitask.fit` runs the images through it
once (`kerastl.training.FeatureCache`, the cache of `kerastl.fit`) and trains
on the cached values:

* heads only (``trainable_blocks=0``): the pooled features, and one model of
  the task heads on them;
* top blocks or a PEFT setting: the activations where the frozen blocks end
  (the frozen prefix, `kerastl.training.graph.prefix_cut`), and the top blocks
  with every head on them.

The trained models share the multi-task model's layers, so training them
trains it. Where no single tensor leaves the frozen part (or every block
trains), training runs on images, as before.
"""

from __future__ import annotations

import keras

from kerastl.accessors import get_backbone, get_blocks
from kerastl.training import graph


def cut_for(model, heads: dict, depth: int):
    """Returns the `kerastl.training.graph.Cut` below `depth` trainable top blocks, or None.

    Args:
        model: The multi-task model.
        heads: ``{task: ClassificationHead}`` (`kerastl.multitask.get_heads`).
        depth: Trainable top blocks of the backbone (0: heads only).
    """
    if depth == 0:
        # All heads pool the same way (kerastl.build gives them one head config).
        poolings = {head.pooling for head in heads.values()}
        return graph.pooled_cut(model) if len(poolings) == 1 else None
    return graph.prefix_cut(model, get_blocks(model), depth)


def cached_model(model, heads: dict, cut) -> keras.Model:
    """Returns activations at `cut` -> ``{task: probabilities}``, made of `model`'s own layers."""
    if cut.pooled:
        width = int(next(iter(heads.values())).input.shape[-1])
        inputs = keras.Input(shape=(width,), name="pooled_features")
        return keras.Model(inputs, {t: h(inputs) for t, h in heads.items()}, name="cached_heads")
    backbone = get_backbone(model)
    inputs = keras.Input(shape=tuple(cut.tensor.shape[1:]), name=f"{cut.name}_activations")
    top = keras.Model(cut.tensor, backbone.outputs[0], name="backbone_top")
    features = top(inputs)
    return keras.Model(inputs, {t: h(features) for t, h in heads.items()}, name="cached_suffix")


def activations(cache, model, cut, *, seed):
    """Returns ``features(data, shuffle)``: a `kerastl.training.inputs.Data`'s cached batches.

    Each task's data is one source of `cache`, so the backbone pass runs once
    per dataset and split; every epoch reads the cached values.
    """
    def features(data, shuffle: bool):
        cached = cache.get(model, data.dataset, cut, source=data.source)
        return cached.dataset(batch_size=data.batch_size, shuffle=shuffle, seed=seed)

    return features


__all__ = ["activations", "cached_model", "cut_for"]
