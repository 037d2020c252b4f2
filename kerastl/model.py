"""`kerastl.build`: pretrained backbone + preprocessing + head as one `keras.Model`.

The accessors that read a built model (`get_head`, `get_backbone`,
`get_blocks`, `model_spec`, `model_info`, `ModelInfo`, `feature_extractor`)
live in `kerastl.accessors` and are re-exported here.
"""

from __future__ import annotations

import contextlib

import keras

from kerastl import distribute
from kerastl._validation import check_bool, check_int, check_keys, check_one_of
from kerastl.accessors import (CUSTOM_PREFIX, HUB_PREFIX, ModelInfo, feature_extractor,
                               get_backbone, get_blocks, get_head, get_preprocessing,
                               model_info, model_spec, spec_for_name)
from kerastl.backbones.blocks import resolve_blocks
from kerastl.backbones.factory import check_weights, make_backbone
from kerastl.backbones.registry import get_backbone_spec
from kerastl.backbones.spec import BackboneSpec
from kerastl.freezing import apply_trainable_blocks, check_trainable_blocks
from kerastl.heads import HeadConfig
from kerastl.layers import TASKS, ClassificationHead, ImagePreprocessing, PREPROCESSING_MODES

DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
AUGMENTATIONS = (None, "default")
_CUSTOM_PREFIX = CUSTOM_PREFIX
_HUB_PREFIX = HUB_PREFIX
_KERASHUB_PREFIX = "kerashub:"


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


def _input_shape(input_shape, spec: BackboneSpec, *, rgb: bool = True):
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
    if rgb and shape[2] != 3:
        # Every kerastl loader decodes images (grayscale too) to RGB, and the
        # backbone's preprocessing and weights expect RGB: another channel count
        # would build, then fail on the first batch.
        raise ValueError(
            f"`input_shape` must have 3 channels for backbone {spec.name!r}: kerastl models "
            "take RGB images in [0, 255] (kerastl.data decodes grayscale images to RGB). "
            f"Received: input_shape={shape}")
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


def _copy_backbone(backbone: keras.Model) -> keras.Model:
    """Returns a copy of a user's backbone model (own layers and weights), named "backbone".

    The caller's model is left as it was (its name, its ``trainable`` flags), and
    two builds from one model train independent weights.
    """
    try:
        copy = keras.models.clone_model(backbone, recursive=True)
    except Exception as error:  # clone_model raises many types for models it cannot clone
        raise ValueError(
            "`backbone` must be a functional or Sequential keras.Model (kerastl.build copies "
            f"it, so the model you pass is left unchanged): cloning it failed with "
            f"{type(error).__name__}: {error} Received: backbone={backbone.name!r}") from None
    copy.set_weights(backbone.get_weights())
    copy.name = "backbone"
    return copy


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
        if input_shape is not None and _input_shape(input_shape, spec, rgb=False) != shape:
            raise ValueError(f"`input_shape` must match the backbone's input {shape}. "
                             f"Received: input_shape={input_shape!r}")
        return spec, _copy_backbone(backbone), shape
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
        return spec, layer, _input_shape(input_shape, spec)
    if backbone.startswith(_KERASHUB_PREFIX):
        from kerastl.backbones.kerashub import resolve_kerashub_backbone

        return resolve_kerashub_backbone(backbone[len(_KERASHUB_PREFIX):],
                                         input_shape=input_shape, weights=weights,
                                         backbone_kwargs=backbone_kwargs)
    spec = get_backbone_spec(backbone)
    weights = check_weights(weights)
    shape = _input_shape(input_shape, spec)
    layer = make_backbone(spec, input_shape=shape, weights=weights,
                          backbone_kwargs=backbone_kwargs)
    return spec, layer, shape


def build(backbone, num_classes=None, *, task=None, input_shape=None, weights="imagenet",
          backbone_kwargs=None, head=None, trainable_blocks=0, augmentation=None, strategy=None,
          bn_training=False, class_names=None, dtype_policy=None, tasks=None,
          name=None) -> keras.Model:
    """Builds an image model: pretrained backbone + its preprocessing + a new head.

    The result is a plain functional `keras.Model` taking RGB images in
    [0, 255] (float32, shape ``input_shape``): compile/fit/evaluate/predict it,
    save it with ``model.save("m.keras")``, export it with ``model.export``.
    Its layers are ``"augmentation"`` (optional), ``"preprocessing"``,
    ``"backbone"`` and ``"head"``.

    Args:
        backbone: A registry name (see `kerastl.list_backbones`), ``"hub:<handle or
            path>"`` for a TF Hub image feature vector, or a ready functional
            `keras.Model` used as the feature extractor. A model is copied (its
            layers and current weights): the model you pass is not changed, and
            each build trains its own weights.
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
        tasks: Multi-task model: ``{task: number of classes or [class names]}``
            (then leave `num_classes`, `task`, `class_names` unset): one backbone,
            one head per task named after it, outputs ``{task: probabilities}``
            (`kerastl.multitask`).
        name: Model name.

    Returns:
        The `keras.Model` (not compiled; `kerastl.fit` compiles it).

    Example:
        >>> model = kerastl.build("mobilenet_v2", num_classes=5, input_shape=(160, 160, 3))
        >>> kerastl.model_info(model).backbone
        'mobilenet_v2'
    """
    check_bool("bn_training", bn_training)
    task_specs = None if tasks is None else _check_tasks(tasks, num_classes, task, class_names)
    task, num_outputs = (("multitask", 0) if task_specs is not None
                         else _task_and_outputs(task, num_classes, class_names))
    head_config = HeadConfig.from_value(head)
    aug = make_augmentation(augmentation)
    strategy = distribute.resolve_strategy(strategy)
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
        outputs = task_outputs(task_specs, head_config, x) if task_specs else ClassificationHead(
            num_outputs, task=task, pooling=head_config.pooling, dropout=head_config.dropout,
            hidden_units=head_config.hidden_units, activation=head_config.activation,
            class_names=class_names, name=head_config.name)(x)
        safe_name = name or f"{spec.name.split(':')[-1].split('/')[-1]}_{task}"
        model = keras.Model(inputs, outputs, name=safe_name)
        if bn_training and strategy is not None and distribute.num_replicas(strategy) > 1:
            distribute.synchronize_batch_norm(model)
        return model


def _check_tasks(tasks, num_classes, task, class_names):
    from kerastl.multitask.heads import check_tasks

    given = {"num_classes": num_classes, "task": task, "class_names": class_names}
    for key, value in given.items():
        if value is not None:
            raise ValueError(f"Pass `tasks` or `{key}`, not both: each task names its classes. "
                             f"Received: {key}={value!r}")
    return check_tasks(tasks)


def task_outputs(tasks, head_config, features):
    from kerastl.multitask.heads import task_outputs as outputs

    return outputs(tasks, head_config, features)


# `build`, and the accessors re-exported from `kerastl.accessors` (their old import path).
__all__ = ["DTYPE_POLICIES", "ModelInfo", "build", "feature_extractor", "get_backbone",
           "get_blocks", "get_head", "get_preprocessing", "make_augmentation", "model_info",
           "model_spec", "spec_for_name"]
