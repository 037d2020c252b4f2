"""Cut points in a kerastl model and the sub-models between them.

A `Cut` is a place where the frozen part of a model ends: either the pooled
features the head's dense layers see (``Cut.pooled``), or the single tensor
that leaves the frozen bottom blocks of a functional backbone (the frozen
prefix). Sub-models between cuts share the model's layers, so training them
trains the model itself.
"""

from __future__ import annotations

import dataclasses
import hashlib

import keras

from kerastl.model import get_backbone, get_head, get_preprocessing

POOLED = "pooled"


@dataclasses.dataclass(eq=False)
class Cut:
    """A point of a kerastl model where cached activations can stand in for the input.

    Attributes:
        name: ``"pooled"`` or the name of the last frozen block (``"block_12"``).
        layers: The backbone layers upstream of the cut (the frozen prefix).
        tensor: The backbone-graph tensor at the cut (None for ``"pooled"``).
        pooling: The head's pooling (part of what ``"pooled"`` means).
    """

    name: str
    layers: list
    tensor: object = None
    pooling: str | None = None

    @property
    def pooled(self) -> bool:
        return self.name == POOLED

    def key(self, model) -> tuple:
        """What the cached values depend on: cut, input, preprocessing, prefix weights."""
        prep = get_preprocessing(model)
        shape = tuple(int(d) for d in model.inputs[0].shape[1:])
        return (self.name, self.pooling, shape, prep.mode, prep.backbone,
                fingerprint(self.layers))

    def upstream_of(self, other: Cut) -> bool:
        """Whether `other` can be computed from this cut's activations."""
        if self.pooled or self is other:
            return False
        mine = {id(layer) for layer in self.layers}
        theirs = {id(layer) for layer in other.layers}
        return mine < theirs


def fingerprint(layers) -> str:
    """Returns a hash of the layers' weights (shapes and values, in layer order).

    Names are left out: Keras numbers unnamed layers per process
    (``input_layer_3``), and two models with the same weights compute the same.
    """
    digest = hashlib.blake2b(digest_size=16)
    for layer in layers:
        for weight in layer.weights:
            value = _numpy(weight)
            digest.update(str(value.shape).encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def _numpy(variable):
    value = getattr(variable, "value", variable)
    return value.numpy() if hasattr(value, "numpy") else keras.ops.convert_to_numpy(value)


def pooled_cut(model) -> Cut:
    """Returns the cut at the head's pooled features (the whole backbone frozen)."""
    backbone = get_backbone(model)
    layers = list(getattr(backbone, "layers", None) or [backbone])
    return Cut(POOLED, layers, None, get_head(model).pooling)


def _graph_nodes(backbone):
    for nodes in backbone._nodes_by_depth.values():
        yield from nodes


def prefix_cut(model, blocks, depth: int) -> Cut | None:
    """Returns the cut below the top `depth` blocks, or None when there is none.

    There is none when the backbone is not a functional model, when nothing
    or everything is frozen, or when more than one tensor crosses the block
    boundary (e.g. NASNet cells read the two previous cells).

    Args:
        model: A kerastl model.
        blocks: Its blocks (`kerastl.get_blocks`).
        depth: Number of trainable top blocks.

    Returns:
        A `Cut`, or None.
    """
    backbone = get_backbone(model)
    if not isinstance(backbone, keras.Model) or not hasattr(backbone, "_nodes_by_depth"):
        return None
    if depth <= 0 or depth >= len(blocks):
        return None
    prefix = [layer for block in blocks[: len(blocks) - depth] for layer in block.layers]
    prefix_ids = {id(layer) for layer in prefix}
    crossing = {}
    for node in _graph_nodes(backbone):
        if id(node.operation) in prefix_ids or isinstance(node.operation, keras.layers.InputLayer):
            continue
        for tensor in node.input_tensors:
            producer = tensor._keras_history.operation
            if id(producer) in prefix_ids:
                crossing[id(tensor)] = tensor
    if len(crossing) != 1:
        return None
    return Cut(blocks[len(blocks) - depth - 1].name, prefix, next(iter(crossing.values())))


def segment(model, start: Cut | None, end: Cut) -> keras.Model:
    """Returns a model from activations at `start` (None: raw images) to `end`.

    Args:
        model: A kerastl model.
        start: Upstream cut, or None for the model's raw image input.
        end: Downstream cut.

    Returns:
        A functional `keras.Model` sharing `model`'s layers.
    """
    backbone = get_backbone(model)
    if start is None:
        inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
        x = get_preprocessing(model)(inputs)
        if end.pooled:
            return keras.Model(inputs, get_head(model).pool(backbone(x)), name="features")
        sub = keras.Model(backbone.inputs, end.tensor, name="prefix")
        return keras.Model(inputs, sub(x), name="prefix_features")
    inputs = keras.Input(shape=tuple(start.tensor.shape[1:]), name=f"{start.name}_activations")
    target = backbone.outputs[0] if end.pooled else end.tensor
    x = keras.Model(start.tensor, target, name="segment")(inputs)
    if end.pooled:
        x = get_head(model).pool(x)
    return keras.Model(inputs, x, name=f"{start.name}_to_{end.name}")


def head_model(model) -> keras.Model:
    """Returns pooled features -> predictions, made of the model's own head layers."""
    head = get_head(model)
    width = _pooled_width(model)
    inputs = keras.Input(shape=(width,), name="pooled_features")
    return keras.Model(inputs, head.classify(inputs), name="cached_head")


def suffix_model(model, cut: Cut) -> keras.Model:
    """Returns activations at `cut` -> predictions (the trainable top blocks + head)."""
    backbone = get_backbone(model)
    inputs = keras.Input(shape=tuple(cut.tensor.shape[1:]), name=f"{cut.name}_activations")
    top = keras.Model(cut.tensor, backbone.outputs[0], name="backbone_top")
    return keras.Model(inputs, get_head(model)(top(inputs)), name="cached_suffix")


def _pooled_width(model) -> int:
    return int(get_head(model).input.shape[-1])


__all__ = ["Cut", "POOLED", "fingerprint", "head_model", "pooled_cut", "prefix_cut", "segment",
           "suffix_model"]
