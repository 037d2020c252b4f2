"""`kerastl.build`: pretrained backbone + preprocessing + head as one `keras.Model`."""

from __future__ import annotations

import contextlib
import dataclasses

import keras

from kerastl import distribute
from kerastl._validation import check_int, check_keys, check_one_of
from kerastl.backbones.blocks import resolve_blocks
from kerastl.backbones.factory import check_weights, make_backbone
from kerastl.backbones.registry import get_backbone_spec
from kerastl.backbones.spec import BackboneSpec
from kerastl.freezing import apply_trainable_blocks, check_trainable_blocks
from kerastl.heads import HeadConfig
from kerastl.layers import TASKS, ClassificationHead, ImagePreprocessing, PREPROCESSING_MODES

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
AUGMENTATIONS = (None, "default")
_CUSTOM_PREFIX = "custom:"
_HUB_PREFIX = "hub:"


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


def spec_for_name(name: str) -> BackboneSpec:
    """Returns the spec of a backbone name stored in a model (registry, hub or custom)."""
    if name.startswith(_HUB_PREFIX):
        return BackboneSpec(name=name, constructor=None, preprocessing="unit",
                            default_input_size=224, min_input_size=1, feature_dim=0,
                            num_blocks=1, source="hub")
    try:
        return get_backbone_spec(name)
    except (ValueError, TypeError):
        return BackboneSpec(name=name, constructor=None, preprocessing="none",
                            default_input_size=224, min_input_size=1, feature_dim=0,
                            num_blocks=0, source="custom")


def model_spec(model) -> BackboneSpec:
    """Returns the `BackboneSpec` of a kerastl model's backbone."""
    return spec_for_name(get_preprocessing(model).backbone or "")


def get_blocks(model):
    """Returns the model's backbone blocks (`kerastl.backbones.Block`), stem to top."""
    return resolve_blocks(model_spec(model), get_backbone(model))


def _strategy(strategy):
    if isinstance(strategy, str):
        from kerastl.distribute import get_strategy

        return get_strategy(strategy)
    return strategy


@contextlib.contextmanager
def _dtype_policy(policy):
    if policy is None:
        yield
        return
    check_one_of("dtype_policy", policy, DTYPE_POLICIES)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _input_shape(input_shape, spec: BackboneSpec, weights):
    if input_shape is None:
        size = spec.default_input_size
        input_shape = (size, size, 3)
    elif isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape, input_shape, 3)
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise ValueError("`input_shape` must be an int or (height, width[, channels]). "
                         f"Received: input_shape={input_shape!r}") from None
    if len(shape) == 2:
        shape = shape + (3,)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError("`input_shape` must be an int or (height, width[, channels]). "
                         f"Received: input_shape={input_shape!r}")
    if min(shape[:2]) < spec.min_input_size:
        raise ValueError(
            f"`input_shape` must be at least {spec.min_input_size}x{spec.min_input_size} for "
            f"backbone {spec.name!r}. Received: input_shape={shape}")
    if shape[2] != 3 and weights is not None:
        raise ValueError(
            f"Pretrained weights need RGB input with 3 channels; pass weights=None to train "
            f"{shape[2]}-channel inputs from scratch. Received: input_shape={shape}")
    return shape


def _task_and_outputs(task, num_classes, class_names):
    if task is not None:
        check_one_of("task", task, TASKS)
    if num_classes is None and class_names is not None:
        num_classes = len(class_names)
    if task is None:
        if num_classes is None:
            raise ValueError("Pass `num_classes` (or `class_names`), or task='regression'. "
                             "Received: num_classes=None")
        n = check_int("num_classes", num_classes, minimum=2,
                      extra=" (pass task='regression', 'binary' or 'multilabel' for one output)")
        return "multiclass", n
    if task == "binary":
        if num_classes not in (None, 2):
            raise ValueError("`num_classes` must be 2 (or None) for task='binary', which has "
                             f"one sigmoid output. Received: num_classes={num_classes!r}")
        return task, 1
    if task == "regression" and num_classes is None:
        return task, 1
    minimum = 2 if task == "multiclass" else 1
    return task, check_int("num_classes", num_classes, minimum=minimum)


def make_augmentation(augmentation):
    """Returns the augmentation layer for `kerastl.build(augmentation=...)`, or None."""
    if augmentation is None:
        return None
    if isinstance(augmentation, str):
        check_one_of("augmentation", augmentation, ("default",))
        layers = [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
                  keras.layers.RandomZoom(0.1), keras.layers.RandomContrast(0.1)]
    elif isinstance(augmentation, (list, tuple)) and all(
            isinstance(layer, keras.layers.Layer) for layer in augmentation):
        layers = list(augmentation)
    else:
        raise ValueError("`augmentation` must be None, 'default', or a list of Keras layers. "
                         f"Received: augmentation={augmentation!r}")
    return keras.Sequential(layers, name="augmentation")


def _resolve_backbone(backbone, *, input_shape, weights, backbone_kwargs):
    """Returns (spec, backbone layer, input_shape) for any accepted `backbone` value."""
    if isinstance(backbone, keras.Model):
        opts = check_keys("backbone_kwargs", backbone_kwargs, ("preprocessing",))
        mode = check_one_of("backbone_kwargs['preprocessing']",
                            opts.get("preprocessing", "none"), PREPROCESSING_MODES)
        spec = BackboneSpec(name=_CUSTOM_PREFIX + backbone.name, constructor=None,
                            preprocessing=mode, default_input_size=0, min_input_size=1,
                            feature_dim=int(backbone.outputs[0].shape[-1]), num_blocks=0,
                            source="custom")
        shape = tuple(int(d) for d in backbone.inputs[0].shape[1:])
        if input_shape is not None and _input_shape(input_shape, spec, None) != shape:
            raise ValueError(f"`input_shape` must match the backbone's input {shape}. "
                             f"Received: input_shape={input_shape!r}")
        backbone.name = "backbone"
        return spec, backbone, shape
    if not isinstance(backbone, str):
        raise TypeError("`backbone` must be a registry name, 'hub:<handle>', or a keras.Model. "
                        f"Received: backbone={backbone!r}")
    if backbone.startswith(_HUB_PREFIX):
        from kerastl.backbones.hub import resolve_hub_backbone

        if weights != "imagenet":
            raise ValueError("TF Hub models bring their own pretrained weights: leave `weights` "
                             f"at its default for 'hub:' backbones. Received: weights={weights!r}")
        layer, spec = resolve_hub_backbone(backbone[len(_HUB_PREFIX):], input_shape=input_shape,
                                           backbone_kwargs=backbone_kwargs)
        return spec, layer, _input_shape(input_shape, spec, None)
    spec = get_backbone_spec(backbone)
    weights = check_weights(weights)
    shape = _input_shape(input_shape, spec, weights)
    layer = make_backbone(spec, input_shape=shape, weights=weights,
                          backbone_kwargs=backbone_kwargs)
    return spec, layer, shape


def build(backbone, num_classes=None, *, task=None, input_shape=None, weights="imagenet",
          backbone_kwargs=None, head=None, trainable_blocks=0, augmentation=None, strategy=None,
          bn_training=False, class_names=None, dtype_policy=None, name=None) -> keras.Model:
    """Builds an image model: pretrained backbone + its preprocessing + a new head.

    The result is a plain functional `keras.Model` taking RGB images in
    [0, 255] (float32, shape ``input_shape``): compile/fit/evaluate/predict it,
    save it with ``model.save("m.keras")``, export it with ``model.export``.
    Its layers are ``"augmentation"`` (optional), ``"preprocessing"``,
    ``"backbone"`` and ``"head"``.

    Args:
        backbone: A registry name (see `kerastl.list_backbones`), ``"hub:<handle or
            path>"`` for a TF Hub image feature vector, or a ready `keras.Model`
            used as the feature extractor.
        num_classes: Number of classes (outputs for ``task="regression"``).
        task: ``"multiclass"`` (softmax), ``"binary"`` (one sigmoid unit),
            ``"multilabel"`` (sigmoid per class) or ``"regression"`` (linear).
            Default: ``"multiclass"``.
        input_shape: Int or ``(height, width[, 3])``; default the backbone's own size.
        weights: ``"imagenet"`` (Keras download path, cached under
            ``$KERAS_HOME/models``), a weights file path, or None (random init).
        backbone_kwargs: Constructor options such as ``{"alpha": 0.35}``.
        head: `kerastl.HeadConfig` or a dict of its fields (pooling, dropout, ...).
        trainable_blocks: Unfreeze depth: 0 (feature extraction), the number of
            top blocks to train, or ``"all"``.
        augmentation: None, ``"default"`` (flip, rotation, zoom, contrast; active
            only in training) or a list of Keras layers.
        strategy: A `tf.distribute.Strategy` (or a `kerastl.distribute.get_strategy`
            kind) whose scope the model is built in.
        bn_training: Let BatchNormalization layers of trainable blocks train.
        class_names: Class names, stored in the model (and later in exports).
        dtype_policy: None, ``"float32"``, ``"mixed_float16"`` or ``"mixed_bfloat16"``;
            the output layer always computes in float32.
        name: Model name.

    Returns:
        The `keras.Model` (not compiled; `kerastl.fit` compiles it).

    Example:
        >>> model = kerastl.build("mobilenet_v2", num_classes=5, input_shape=(160, 160, 3))
        >>> kerastl.model_info(model).backbone
        'mobilenet_v2'
    """
    if not isinstance(bn_training, bool):
        raise ValueError(f"`bn_training` must be True or False. Received: bn_training={bn_training!r}")
    task, num_outputs = _task_and_outputs(task, num_classes, class_names)
    head_config = HeadConfig.from_value(head)
    aug = make_augmentation(augmentation)
    strategy = _strategy(strategy)
    if strategy is not None and dtype_policy is None:
        dtype_policy = distribute.default_dtype_policy(strategy)
    with distribute.scope(strategy), _dtype_policy(dtype_policy):
        spec, bb, shape = _resolve_backbone(backbone, input_shape=input_shape, weights=weights,
                                            backbone_kwargs=backbone_kwargs)
        blocks = resolve_blocks(spec, bb)
        depth = check_trainable_blocks(trainable_blocks, spec, len(blocks))
        apply_trainable_blocks(bb, blocks, depth, bn_training=bn_training)
        inputs = keras.Input(shape=shape, name="image")
        x = aug(inputs) if aug is not None else inputs
        x = ImagePreprocessing(spec.preprocessing, backbone=spec.name, name="preprocessing")(x)
        x = bb(x)
        outputs = ClassificationHead(
            num_outputs, task=task, pooling=head_config.pooling, dropout=head_config.dropout,
            hidden_units=head_config.hidden_units, activation=head_config.activation,
            class_names=class_names, name=head_config.name)(x)
        safe_name = name or f"{spec.name.split(':')[-1].split('/')[-1]}_{task}"
        model = keras.Model(inputs, outputs, name=safe_name)
        if bn_training and strategy is not None and distribute.num_replicas(strategy) > 1:
            distribute.synchronize_batch_norm(model)
        return model
