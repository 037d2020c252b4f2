"""Read a kerastl model: its head, backbone, blocks, spec and `ModelInfo`.

These accessors work on any model with kerastl's layout (built by
`kerastl.build`, or loaded from its ``.keras`` file): they find the layers by
type and name, and the backbone's `kerastl.BackboneSpec` by the name stored
in the `kerastl.layers.ImagePreprocessing` layer. `kerastl.build` lives in
`kerastl.model`, which re-exports these names.
"""

from __future__ import annotations

import dataclasses
import warnings

import keras

from kerastl.backbones.blocks import resolve_blocks
from kerastl.backbones.registry import get_backbone_spec
from kerastl.backbones.spec import BackboneSpec
from kerastl.layers import ClassificationHead, ImagePreprocessing

CUSTOM_PREFIX = "custom:"
HUB_PREFIX = "hub:"


class UnregisteredBackboneWarning(UserWarning):
    """A model names a backbone that is not in this session's registry."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a kerastl model is, read from its layers (survives save/load).

    Attributes:
        backbone: Registry name, ``"hub:<handle>"`` or ``"custom:<name>"``.
        task: ``"multiclass"``, ``"binary"``, ``"multilabel"`` or ``"regression"``.
        num_outputs: Units of the output layer.
        class_names: Class names, or None.
        input_shape: ``(height, width, channels)``; inputs are RGB in [0, 255].
        preprocessing: The `kerastl.layers.ImagePreprocessing` mode.
    """

    backbone: str
    task: str
    num_outputs: int
    class_names: list | None
    input_shape: tuple
    preprocessing: str

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["input_shape"] = list(self.input_shape)
        return out


def _find_layer(model, cls, what):
    for layer in model.layers:
        if isinstance(layer, cls):
            return layer
    raise ValueError(f"{model.name!r} is not a kerastl model: it has no {what} layer "
                     f"({cls.__name__}). Build it with kerastl.build(...).")


def get_head(model) -> ClassificationHead:
    """Returns the model's `kerastl.layers.ClassificationHead` layer."""
    return _find_layer(model, ClassificationHead, "head")


def get_preprocessing(model) -> ImagePreprocessing:
    """Returns the model's `kerastl.layers.ImagePreprocessing` layer."""
    return _find_layer(model, ImagePreprocessing, "preprocessing")


def get_backbone(model):
    """Returns the model's backbone layer (the layer named ``"backbone"``)."""
    try:
        return model.get_layer("backbone")
    except ValueError:
        raise ValueError(f"{model.name!r} is not a kerastl model: it has no layer named "
                         "'backbone'. Build it with kerastl.build(...).") from None


def model_info(model) -> ModelInfo:
    """Describes a model built by `kerastl.build` (or loaded from its ``.keras`` file).

    Args:
        model: The model.

    Returns:
        A `ModelInfo`.

    Example:
        >>> model = kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None)
        >>> kerastl.model_info(model).task
        'multiclass'
    """
    head, prep = get_head(model), get_preprocessing(model)
    shape = tuple(int(d) for d in model.inputs[0].shape[1:])
    return ModelInfo(backbone=prep.backbone or "", task=head.task, num_outputs=head.num_outputs,
                     class_names=head.class_names, input_shape=shape, preprocessing=prep.mode)


def feature_extractor(model, *, pooled: bool = True) -> keras.Model:
    """Returns a model from raw images to the backbone's features, sharing `model`'s layers.

    Augmentation is left out: the result computes the features the head sees
    at inference.

    Args:
        model: A kerastl model.
        pooled: Return the head's pooled features (2D) instead of the backbone's
            output (a 4D feature map for Keras Applications backbones).

    Returns:
        A functional `keras.Model` (its layers are `model`'s layers, not copies).

    Example:
        >>> model = kerastl.build("mobilenet_v2", 3, input_shape=(32, 32, 3), weights=None)
        >>> kerastl.feature_extractor(model).output.shape
        (None, 1280)
    """
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
    x = get_backbone(model)(get_preprocessing(model)(inputs))
    if pooled:
        x = get_head(model).pool(x)
    return keras.Model(inputs, x, name=f"{model.name}_features")


def _custom_spec(name: str) -> BackboneSpec:
    # No block pattern: `resolve_blocks` makes each layer with weights a block.
    return BackboneSpec(name=name, constructor=None, preprocessing="none",
                        default_input_size=224, min_input_size=1, feature_dim=0,
                        num_blocks=0, source="custom")


def spec_for_name(name: str) -> BackboneSpec:
    """Returns the spec of a backbone name stored in a model (registry, hub or custom).

    ``"hub:..."`` names get a TF Hub spec (one block), ``"custom:..."`` names
    (a `keras.Model` given to `kerastl.build`) a spec whose blocks are the
    backbone's layers with weights. Any other name must be registered: a
    model saved with a backbone added by `kerastl.register_backbone` in
    another session names it, and without its spec its named blocks are
    unknown. Such a name warns (`UnregisteredBackboneWarning`, naming
    `kerastl.register_backbone`) and falls back to the custom spec.

    Args:
        name: The name stored in the model's preprocessing layer.

    Returns:
        A `kerastl.BackboneSpec`.

    Example:
        >>> kerastl.accessors.spec_for_name("mobilenet_v2").num_blocks
        18
    """
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string. Received: name={name!r}")
    if name.startswith(HUB_PREFIX):
        return BackboneSpec(name=name, constructor=None, preprocessing="unit",
                            default_input_size=224, min_input_size=1, feature_dim=0,
                            num_blocks=1, source="hub")
    if name.startswith(CUSTOM_PREFIX):
        return _custom_spec(name)
    if name.startswith("kerashub:"):
        from kerastl.backbones.kerashub import kerashub_spec

        return kerashub_spec(name)
    try:
        return get_backbone_spec(name)
    except ValueError:
        pass
    warnings.warn(
        f"Backbone {name!r} is not registered in this session, so its named blocks are "
        "unknown: each layer with weights counts as one block. Register its spec with "
        "kerastl.register_backbone(spec) before using the model to count unfreeze depth in "
        "its own blocks.", UnregisteredBackboneWarning, stacklevel=3)
    return _custom_spec(name)


def model_spec(model) -> BackboneSpec:
    """Returns the `BackboneSpec` of a kerastl model's backbone."""
    return spec_for_name(get_preprocessing(model).backbone or "")


def get_blocks(model):
    """Returns the model's backbone blocks (`kerastl.backbones.Block`), stem to top."""
    return resolve_blocks(model_spec(model), get_backbone(model))


__all__ = ["ModelInfo", "UnregisteredBackboneWarning", "feature_extractor", "get_backbone",
           "get_blocks", "get_head", "get_preprocessing", "model_info", "model_spec",
           "spec_for_name"]
