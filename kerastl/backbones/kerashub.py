"""KerasHub image backbones for `kerastl.build("kerashub:<preset or folder>")`.

A KerasHub preset (a built-in name such as ``"resnet_50_imagenet"``, a
``kaggle://`` / ``hf://`` handle, or a local folder written by
``backbone.save_to_preset``) becomes a kerastl backbone with the same contract
as every other one:

* the preset's image converter sets the input scaling: its ``scale`` and
  ``offset`` are matched to a `kerastl.layers.ImagePreprocessing` mode
  (``"tf"``, ``"unit"``, ``"torch"`` or ``"none"``), and its ``image_size`` is
  the default input size (kerastl's data loaders resize, so the converter's
  resizing is not needed);
* CNN backbones (ResNet, EfficientNet, MobileNet, DenseNet, CSPNet...) are
  used as they are (their 4D feature map goes to the head's pooling);
  transformer backbones (ViT, DeiT, DINOv2...) return tokens, so they are
  wrapped with a `TokenPooling` layer (class token by default);
* named blocks (`kerastl.backbones.kerashub_blocks`): the architecture's own stages and
  transformer blocks (``stack2_block1``, ``transformer_block_7``), found in
  the layers after nested encoders are expanded;
* ViT-family backbones take LoRA on their attention through KerasHub's own
  ``Backbone.enable_lora`` (`enable_lora`).

``import kerastl.backbones.kerashub`` does not import KerasHub; it is imported
when a preset is resolved (and by Keras itself when a saved model names it).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re

import keras
import numpy as np

from kerastl._validation import check_int, check_keys, check_one_of
from kerastl.backbones.kerashub_blocks import BLOCK_PATTERN
from kerastl.backbones.spec import BackboneSpec

PREFIX = "kerashub:"
TOKEN_POOLINGS = ("token", "mean")
KERASHUB_BACKBONE_KWARGS = ("pooling",)
WEIGHTS = ("imagenet", None)
# Input scalings of `kerastl.layers.ImagePreprocessing`, as ``x * scale + offset``
# per channel on [0, 255] pixels.
_TORCH_MEAN = np.array((0.485, 0.456, 0.406))
_TORCH_STD = np.array((0.229, 0.224, 0.225))
_MODES = {
    "none": (np.ones(3), np.zeros(3)),
    "unit": (np.full(3, 1 / 255), np.zeros(3)),
    "tf": (np.full(3, 1 / 127.5), np.full(3, -1.0)),
    "torch": (1 / (255 * _TORCH_STD), -_TORCH_MEAN / _TORCH_STD),
}


@keras.saving.register_keras_serializable(package="kerastl")
class TokenPooling(keras.layers.Layer):
    """Pools a transformer's ``(batch, tokens, features)`` output to ``(batch, features)``.

    Args:
        mode: ``"token"`` (the first, class token) or ``"mean"`` (mean of all tokens).
        **kwargs: Standard layer arguments (`name`, `dtype`).

    Example:
        >>> layer = kerastl.backbones.kerashub.TokenPooling("mean")
        >>> layer(keras.ops.ones((2, 5, 8))).shape
        (2, 8)
    """

    def __init__(self, mode: str = "token", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_one_of("mode", mode, TOKEN_POOLINGS)

    def call(self, inputs):
        if self.mode == "token":
            return inputs[:, 0, :]
        return keras.ops.mean(inputs, axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config["mode"] = self.mode
        return config


def _keras_hub():
    try:
        import keras_hub
    except ImportError as err:  # pragma: no cover - keras-hub is a dependency of the extra
        raise ImportError("'kerashub:' backbones need the `keras-hub` package: "
                          "pip install 'kerastl[kerashub]'") from err
    return keras_hub


def _unknown_preset(ref: str, keras_hub) -> ValueError:
    from keras_hub.src.utils import preset_utils

    close = difflib.get_close_matches(ref, list(preset_utils.BUILTIN_PRESETS), n=5, cutoff=0.5)
    hint = f" Close built-in names: {', '.join(close)}." if close else ""
    return ValueError(
        f"Unknown KerasHub preset {ref!r}: it is neither a built-in preset name, a "
        f"kaggle:// or hf:// handle, nor a folder holding a preset's config.json.{hint} "
        "Pass a folder written by `backbone.save_to_preset(folder)` to run offline. "
        f"Received: backbone='kerashub:{ref}'")


def _load_error(ref: str, err: Exception) -> OSError:
    return OSError(
        f"Could not load the KerasHub preset {ref!r} ({type(err).__name__}: "
        f"{str(err).splitlines()[0] if str(err) else ''}). Built-in presets and handles are "
        "downloaded through kagglehub (cached under $KAGGLEHUB_CACHE); to run offline, "
        "download it once where there is internet access and save it with "
        "`keras_hub.models.Backbone.from_preset(name).save_to_preset(folder)` (and the "
        "image converter with `keras_hub.layers.ImageConverter.from_preset(name)"
        ".save_to_preset(folder)`), then pass 'kerashub:<folder>'.")


def preset_config(ref: str) -> dict:
    """Returns the backbone config of a KerasHub preset, checking that it is an image model.

    Args:
        ref: A built-in preset name, a ``kaggle://``/``hf://`` handle, or a local folder.

    Returns:
        The ``config.json`` dict (``registered_name``, ``config``...).

    Raises:
        ValueError: Unknown preset, or a preset that is not an image backbone.
        OSError: The preset cannot be read or downloaded.

    Example:
        >>> kerastl.backbones.kerashub.preset_config("presets/tiny_vit")["registered_name"]
        'keras_hub>ViTBackbone'
    """
    keras_hub = _keras_hub()
    from keras_hub.src.utils import preset_utils

    local = os.path.isdir(os.path.expanduser(ref))
    if not local and "://" not in ref and ref not in preset_utils.BUILTIN_PRESETS:
        raise _unknown_preset(ref, keras_hub)
    path = os.path.expanduser(ref) if local else ref
    if local and not os.path.isfile(os.path.join(path, preset_utils.CONFIG_FILE)):
        raise _unknown_preset(ref, keras_hub)
    try:
        config = preset_utils.load_json(path, preset_utils.CONFIG_FILE)
    except (OSError, ValueError, ImportError) as err:
        raise _load_error(ref, err) from err
    inner = config.get("config", {}) if isinstance(config, dict) else {}
    shape = inner.get("image_shape")
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise ValueError(
            f"The KerasHub preset {ref!r} is not an image model: its backbone "
            f"{config.get('registered_name', config.get('class_name', '?'))!r} takes no "
            "`image_shape` (kerastl builds image classifiers; pass a preset of an image "
            "backbone such as ResNet, EfficientNet, MobileNet, ViT, DeiT, DINOv2). "
            f"Received: backbone='kerashub:{ref}'")
    return config


def preprocessing_mode(scale, offset) -> str:
    """Returns the `ImagePreprocessing` mode equal to a converter's ``x * scale + offset``.

    Args:
        scale: The converter's scale (None, a number or one per channel).
        offset: Its offset (None, a number or one per channel).

    Raises:
        ValueError: No mode computes the same scaling.

    Example:
        >>> kerastl.backbones.kerashub.preprocessing_mode(1 / 127.5, -1.0)
        'tf'
    """
    s = np.broadcast_to(np.asarray(1.0 if scale is None else scale, "float64"), (3,))
    o = np.broadcast_to(np.asarray(0.0 if offset is None else offset, "float64"), (3,))
    for mode, (ms, mo) in _MODES.items():
        if np.allclose(s, ms, rtol=1e-3, atol=1e-6) and np.allclose(o, mo, rtol=1e-3, atol=1e-4):
            return mode
    raise ValueError(
        "The preset's image converter scales pixels as x * scale + offset with "
        f"scale={s.tolist()} and offset={o.tolist()}, which none of kerastl's input "
        f"scalings ({', '.join(_MODES)}) computes. Received: an unsupported image converter")


def _converter(ref: str, keras_hub):
    from keras_hub.src.utils import preset_utils

    if not preset_utils.check_file_exists(ref, preset_utils.IMAGE_CONVERTER_CONFIG_FILE):
        return None
    try:
        return keras_hub.layers.ImageConverter.from_preset(ref)
    except (OSError, ValueError) as err:
        raise _load_error(ref, err) from err


def _fixed(image_shape) -> bool:
    return all(d is not None for d in image_shape[:2])


def _load_backbone(ref: str, path: str, config: dict, shape, weights, keras_hub):
    """Instantiates the preset's backbone at `shape` (weights loaded unless None)."""
    preset_shape = tuple(config["config"]["image_shape"])
    override = {}
    if not _fixed(preset_shape) or weights is None:
        override["image_shape"] = tuple(shape)
    elif tuple(shape[:2]) != tuple(preset_shape[:2]):
        raise ValueError(
            f"`input_shape` must be {tuple(preset_shape)} for the KerasHub preset {ref!r}: its "
            "weights (position embeddings) fix the image size (weights=None builds it "
            f"at any size). Received: input_shape={tuple(shape)}")
    try:
        return keras_hub.models.Backbone.from_preset(path, load_weights=weights is not None,
                                                     **override)
    except (OSError, ImportError) as err:
        raise _load_error(ref, err) from err


def _pooling(backbone, options) -> str:
    default = "token" if (getattr(backbone, "use_class_token", True) is not False) else "mean"
    return check_one_of("backbone_kwargs['pooling']", options.get("pooling", default),
                        TOKEN_POOLINGS)


def _as_kerastl_backbone(backbone, options):
    """Returns the layer kerastl uses: the backbone itself, or it + `TokenPooling`."""
    rank = len(backbone.outputs[0].shape)
    if rank == 4:
        backbone.name = "backbone"
        return backbone
    if rank != 3:
        raise ValueError(f"The KerasHub backbone {type(backbone).__name__} returns rank-{rank} "
                         "outputs; kerastl needs a 4D feature map or (batch, tokens, features).")
    inputs = keras.Input(shape=tuple(backbone.inputs[0].shape[1:]), name="images")
    outputs = TokenPooling(_pooling(backbone, options), name="token_pooling")(backbone(inputs))
    return keras.Model(inputs, outputs, name="backbone")


def resolve_kerashub_backbone(ref, *, input_shape=None, weights="imagenet",
                              backbone_kwargs=None):
    """Loads a KerasHub image backbone for `kerastl.build("kerashub:<ref>")`.

    Args:
        ref: A KerasHub preset name, a ``kaggle://``/``hf://`` handle, or a local
            preset folder (``backbone.save_to_preset(folder)``; works offline).
        input_shape: Int or ``(height, width[, 3])``; default the converter's
            image size (else the preset's image shape, else 224).
        weights: ``"imagenet"`` (the preset's pretrained weights, the default of
            `kerastl.build`) or None (random initialisation).
        backbone_kwargs: Optional ``pooling`` of transformer tokens:
            ``"token"`` (class token; default when the model has one) or ``"mean"``.

    Returns:
        ``(spec, backbone layer, input_shape)``: the `BackboneSpec`
        (``source="kerashub"``), the layer named ``"backbone"`` and the
        ``(height, width, 3)`` input shape.

    Example:
        >>> spec, layer, shape = kerastl.backbones.kerashub.resolve_kerashub_backbone(
        ...     "presets/tiny_resnet")
        >>> spec.source, shape
        ('kerashub', (224, 224, 3))
    """
    from kerastl.model import _input_shape

    if not isinstance(ref, (str, os.PathLike)) or not os.fspath(ref).strip():
        raise ValueError("`backbone` must name a KerasHub preset after 'kerashub:'. "
                         f"Received: backbone='kerashub:{ref}'")
    ref = os.fspath(ref)
    options = check_keys("backbone_kwargs", backbone_kwargs, KERASHUB_BACKBONE_KWARGS)
    if weights not in WEIGHTS:
        raise ValueError("KerasHub presets bring their own weights: `weights` must be "
                         "'imagenet' (the preset's weights) or None (random init) for "
                         f"'kerashub:' backbones. Received: weights={weights!r}")
    keras_hub = _keras_hub()
    config = preset_config(ref)
    path = os.path.expanduser(ref) if os.path.isdir(os.path.expanduser(ref)) else ref
    converter = _converter(path, keras_hub)
    mode = "none" if converter is None else preprocessing_mode(converter.scale, converter.offset)
    preset_shape = tuple(config["config"]["image_shape"])
    fixed = _fixed(preset_shape)
    size = (converter.image_size[0] if converter is not None and converter.image_size
            else (preset_shape[0] if fixed else 224))
    base = kerashub_spec(PREFIX + ref, preprocessing=mode, default_input_size=int(size),
                         min_input_size=int(preset_shape[0]) if fixed and weights else 32)
    shape = _input_shape(input_shape, base)
    backbone = _load_backbone(ref, path, config, shape, weights, keras_hub)
    family = _family(config)
    layer = _as_kerastl_backbone(backbone, options)
    from kerastl.backbones.blocks import resolve_blocks

    spec = kerashub_spec(
        PREFIX + ref, preprocessing=mode, default_input_size=int(size),
        min_input_size=base.min_input_size, feature_dim=int(layer.outputs[0].shape[-1]),
        num_blocks=0, num_params=int(layer.count_params()), family=family,
        fixed_input_size=(int(preset_shape[0]),) if fixed and weights else ())
    return _with_blocks(spec, len(resolve_blocks(spec, layer))), layer, shape


def _with_blocks(spec: BackboneSpec, num_blocks: int) -> BackboneSpec:
    return dataclasses.replace(spec, num_blocks=num_blocks)


def _family(config: dict) -> str:
    name = str(config.get("registered_name") or config.get("class_name") or "")
    name = name.split(">")[-1].removesuffix("Backbone")
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower() or "kerashub"


def kerashub_spec(name: str, *, preprocessing: str = "none", default_input_size: int = 224,
                  min_input_size: int = 32, feature_dim: int = 0, num_blocks: int = 0,
                  num_params: int = 0, family: str = "kerashub",
                  fixed_input_size: tuple = ()) -> BackboneSpec:
    """Returns the `BackboneSpec` of a ``"kerashub:<ref>"`` backbone name.

    With only `name`, this is the spec `kerastl.accessors.spec_for_name` needs
    for a saved model: its blocks are found from the backbone's layers
    (``source="kerashub"``), so nothing has to be downloaded.

    Example:
        >>> kerastl.backbones.kerashub.kerashub_spec("kerashub:resnet_50_imagenet").source
        'kerashub'
    """
    if not isinstance(name, str) or not name.startswith(PREFIX):
        raise ValueError(f"`name` must start with {PREFIX!r}. Received: name={name!r}")
    return BackboneSpec(
        name=name, constructor=None, preprocessing=preprocessing,
        default_input_size=check_int("default_input_size", default_input_size, minimum=1),
        min_input_size=min_input_size, feature_dim=feature_dim, num_blocks=num_blocks,
        block_pattern=BLOCK_PATTERN, block_anchor="start", num_params=num_params,
        family=family, kwargs={"pooling": None}, source="kerashub",
        fixed_input_size=tuple(fixed_input_size))


def find_kerashub_backbone(model):
    """Returns the KerasHub `Backbone` inside a kerastl model (or backbone layer), or None."""
    layer = model
    try:
        from kerastl.accessors import get_backbone

        layer = get_backbone(model)
    except ValueError:
        pass
    keras_hub = _keras_hub()
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        if isinstance(sub, keras_hub.models.Backbone):
            return sub
    return None


def enable_lora(model, rank: int, *, target_layer_names=None) -> list[str]:
    """Adds LoRA to the attention of a KerasHub backbone, through KerasHub's `enable_lora`.

    KerasHub freezes the whole backbone and enables LoRA on the query and value
    projections of every attention layer (ViT, DeiT, DINOv2...). The head stays
    trainable.

    Args:
        model: A kerastl model with a ``kerashub:`` backbone.
        rank: Rank of the low-rank update (>= 1).
        target_layer_names: Layer names to adapt (default KerasHub's,
            ``backbone.default_lora_layer_names()``).

    Returns:
        Names of the layers that got LoRA.

    Raises:
        ValueError: The model has no KerasHub backbone, or no layer to adapt.

    Example:
        >>> kerastl.backbones.kerashub.enable_lora(model, 4)
        ['query', 'value', ...]
    """
    rank = check_int("rank", rank, minimum=1)
    backbone = find_kerashub_backbone(model)
    if backbone is None:
        raise ValueError("`model` must have a KerasHub backbone ('kerashub:' in kerastl.build) "
                         "for KerasHub's enable_lora. Received: a model without one")
    outer = model.get_layer("backbone") if isinstance(model, keras.Model) and any(
        layer.name == "backbone" for layer in model.layers) else None
    if outer is not None and outer is not backbone:
        outer.trainable = True  # first: KerasHub then freezes all but the LoRA factors
    backbone.enable_lora(rank, target_layer_names=target_layer_names)
    names = [layer.name for layer in backbone._flatten_layers(include_self=False)
             if getattr(layer, "lora_enabled", False)]
    if not names:
        raise ValueError(f"KerasHub found no attention layer to adapt in "
                         f"{type(backbone).__name__} (LoRA targets "
                         f"{target_layer_names or backbone.default_lora_layer_names()}).")
    return names


__all__ = ["PREFIX", "TokenPooling", "enable_lora", "find_kerashub_backbone", "kerashub_spec",
           "preprocessing_mode", "preset_config", "resolve_kerashub_backbone"]
