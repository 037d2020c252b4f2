"""`kerastl.fewshot.build` and `add_classes`: prototype classifiers from a few images.

A prototype model is a kerastl model (``image -> preprocessing -> backbone
-> head``) whose head is a `kerastl.fewshot.PrototypeHead`: one prototype
per class, the mean of the class's pooled support features. Building one is
a single backbone pass over the support images (through
`kerastl.training.FeatureCache`), no training; adding a class appends its
prototype and leaves the others as they were.
"""

from __future__ import annotations

import keras
import numpy as np

from kerastl._validation import check_int, check_one_of
from kerastl.accessors import get_backbone, get_head, get_preprocessing
from kerastl.fewshot import prototypes as proto
from kerastl.fewshot._data import check_every_class, features
from kerastl.fewshot.layers import AVERAGING, METRICS, PrototypeHead, default_scale
from kerastl.layers import ClassificationHead


def with_head(model, head, *, name=None) -> keras.Model:
    """Returns a model of `model`'s input, augmentation, preprocessing and backbone + `head`.

    The new model shares `model`'s layers (and so its weights), except the head.

    Example:
        >>> grown = kerastl.fewshot.builder.with_head(model, kerastl.fewshot.PrototypeHead(4))
    """
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name="image")
    x = inputs
    if any(layer.name == "augmentation" for layer in model.layers):
        x = model.get_layer("augmentation")(x)
    x = get_backbone(model)(get_preprocessing(model)(x))
    return keras.Model(inputs, head(x), name=name or model.name)


def pooled_width(model) -> int:
    """Returns the width of the pooled features the head of `model` sees."""
    return int(get_head(model).input.shape[-1])


def _is_kerastl_model(value) -> bool:
    if not isinstance(value, keras.Model):
        return False
    return any(isinstance(layer, ClassificationHead) for layer in value.layers)


def _data_shape(value):
    from kerastl.data import ImageData

    if isinstance(value, ImageData):
        return tuple(value.image_size) + (3,)
    if isinstance(value, dict) and value:
        first = np.asarray(next(iter(value.values())))
        return tuple(first.shape[1:]) if first.ndim == 4 else None
    if isinstance(value, (tuple, list)) and value and np.ndim(value[0]) == 4:
        return tuple(np.shape(value[0])[1:])
    spec = getattr(value, "element_spec", None)
    if isinstance(spec, tuple) and spec[0].shape.rank in (3, 4):
        return tuple(int(d) for d in spec[0].shape[-3:])
    return None


def base_model(backbone_or_model, data, *, input_shape=None, weights="imagenet"):
    """Returns a kerastl model for the features: the model itself, or a new `kerastl.build`.

    Args:
        backbone_or_model: A kerastl model, a backbone name (registry or
            ``"hub:..."``) or a `keras.Model` backbone.
        data: Data whose image size sets the input size when `input_shape` is None.
        input_shape: Input size of a new model.
        weights: Backbone weights of a new model.
    """
    if _is_kerastl_model(backbone_or_model):
        return backbone_or_model
    from kerastl.model import build as build_model

    shape = input_shape if input_shape is not None else _data_shape(data)
    return build_model(backbone_or_model, 2, input_shape=shape, weights=weights)


def _check_names(names, num_classes: int):
    if names is None:
        return [str(i) for i in range(num_classes)]
    if len(names) != num_classes:
        raise ValueError(f"`class_names` must have {num_classes} entries, one per class of the "
                         f"support data. Received: class_names={names!r:.300}")
    seen = set()
    for n in names:
        if n in seen:
            raise ValueError(f"`class_names` must be unique; {n!r} appears twice. Received: "
                             f"class_names={names!r:.300}")
        seen.add(n)
    return names


def _unlabelled(value):
    array = np.asarray(value) if isinstance(value, np.ndarray) else None
    if array is not None:
        return (array, np.zeros(len(array), "int64"))
    spec = getattr(value, "element_spec", None)
    if spec is not None and not isinstance(spec, tuple):
        import tensorflow as tf

        return value.map(lambda x: (x, tf.zeros(tf.shape(x)[:1], tf.int64)))
    return value


def _mapped(x, whitening):
    return x if whitening is None else proto.whiten(x, whitening)


def _set_weights(head, prototypes, whitening) -> None:
    head.output_layer.set_weights([prototypes] + ([] if whitening is None else list(whitening)))


def build(backbone_or_model, support_data, *, metric: str = "cosine", scale=None,
          class_names=None, input_shape=None, weights="imagenet", refine_data=None,
          refine_steps: int = 1, fine_tune_steps: int = 0, learning_rate: float = 0.01,
          feature_cache=None, batch_size: int = 32, name=None) -> keras.Model:
    """Builds a prototype (nearest-class-mean) classifier from a few labelled images.

    Args:
        backbone_or_model: A backbone name (``"mobilenet_v2"``, ``"hub:..."``),
            a `keras.Model` backbone, or a kerastl model whose preprocessing and
            backbone are reused (shared, not copied).
        support_data: The labelled support images (or embeddings), see
            `kerastl.fewshot` for the accepted forms; every class needs at
            least one image.
        metric: ``"cosine"`` (normalised prototypes), ``"euclidean"``, or
            ``"mahalanobis"``: features centred on the support mean,
            normalised and whitened by the support's within-class covariance
            (shrunk by the Ledoit-Wolf formula), then Euclidean prototypes;
            a shared-covariance linear discriminant, stored in the head so
            `add_classes` and an app add classes by averaging as before.
        scale: Score scale of the head (default 10 for cosine, 1 for Euclidean,
            0.5 for Mahalanobis).
        class_names: Class names (default: those of the data, else ``"0"``, ``"1"``...).
        input_shape: Input size of a new model (default: the support images' size).
        weights: Backbone weights of a new model.
        refine_data: Unlabelled images or embeddings for transductive refinement
            of the prototypes (soft k-means), or None.
        refine_steps: Refinement steps.
        fine_tune_steps: Baseline++ steps: the prototypes initialise a cosine
            classifier trained on the support features (0: none; cosine only).
        learning_rate: Adam step size of the Baseline++ steps.
        feature_cache: A `kerastl.training.FeatureCache` to share backbone passes.
        batch_size: Images per backbone batch.
        name: Model name.

    Returns:
        A `keras.Model` whose head is a `kerastl.fewshot.PrototypeHead`.

    Example:
        >>> model = kerastl.fewshot.build("mobilenet_v2", {"cup": cups, "pen": pens})
        >>> kerastl.model_info(model).class_names
        ['cup', 'pen']
    """
    check_one_of("metric", metric, METRICS)
    scale = default_scale(metric, scale)
    steps = check_int("fine_tune_steps", fine_tune_steps, minimum=0)
    if steps and metric != "cosine":
        raise ValueError("`fine_tune_steps` trains a cosine classifier (Baseline++): use "
                         f"metric='cosine'. Received: fine_tune_steps={steps}, metric={metric!r}")
    base = base_model(backbone_or_model, support_data, input_shape=input_shape, weights=weights)
    width = pooled_width(base)
    found = features("support_data", base, support_data, width=width,
                     feature_cache=feature_cache, batch_size=batch_size, class_names=class_names)
    k = len(found.class_names) if found.class_names else int(found.y.max()) + 1
    names = _check_names(found.class_names, k)
    check_every_class("support_data", found.y, k, names)
    if k < 2:
        raise ValueError("`support_data` must have at least 2 classes (add more with "
                         f"kerastl.fewshot.add_classes). Received: {k} class")
    whitening = proto.fit_whitening(found.x, found.y, k) if metric == "mahalanobis" else None
    space, support_x = AVERAGING[metric], _mapped(found.x, whitening)
    prototypes = proto.class_prototypes(support_x, found.y, k, metric=space)
    if refine_data is not None:
        extra = features("refine_data", base, _unlabelled(refine_data), width=width,
                         feature_cache=feature_cache, batch_size=batch_size)
        prototypes = proto.refine_prototypes(prototypes, support_x, found.y,
                                             _mapped(extra.x, whitening), metric=space,
                                             scale=scale, steps=refine_steps)
    if steps:
        prototypes = proto.fit_cosine_classifier(found.x, found.y, prototypes, scale=scale,
                                                 steps=steps, learning_rate=learning_rate)
    head = PrototypeHead(k, metric=metric, scale=scale, pooling=get_head(base).pooling,
                         rank=1 if whitening is None else len(whitening.gains),
                         class_names=names, name="head")
    model = with_head(base, head, name=name or f"{base.name.rsplit('_', 1)[0]}_prototypes")
    _set_weights(head, prototypes, whitening)
    return model


def prototype_head(model) -> PrototypeHead:
    """Returns the `PrototypeHead` of `model`, or raises TypeError for other models."""
    head = get_head(model)
    if not isinstance(head, PrototypeHead):
        raise TypeError("`model` must be a prototype model (kerastl.fewshot.build); its head "
                        f"is a {type(head).__name__}. Use kerastl.extend to add classes to a "
                        f"trained classifier. Received: model={model.name!r}")
    return head


def new_class_names(name: str, head, found) -> tuple[list, list]:
    """Returns the old head's class names and the new classes' names, checked to be new.

    Args:
        name: The data argument's name, for error messages.
        head: The head of the model being grown.
        found: The new classes' `kerastl.fewshot._data.Features`.
    """
    m = len(found.class_names) if found.class_names else int(found.y.max()) + 1
    old = head.class_names or [str(i) for i in range(head.num_outputs)]
    new = found.class_names or [str(len(old) + i) for i in range(m)]
    taken = sorted(set(old) & set(new))
    if taken or len(set(new)) != len(new):
        twice = taken[0] if taken else next(n for n in new if new.count(n) > 1)
        raise ValueError(f"`{name}` class names must be new and unique; {twice!r} is "
                         f"{'already a class of the model' if taken else 'given twice'}. "
                         f"Received: new class names {new!r:.300}")
    return list(old), list(new)


def add_classes(model, new_support, *, class_names=None, feature_cache=None,
                batch_size: int = 32) -> keras.Model:
    """Returns `model` with one more prototype per new class; the old ones are unchanged.

    The new model shares `model`'s backbone; the old prototypes are copied
    bit for bit, so the old classes' scores do not change (their
    probabilities only make room for the new classes).

    Args:
        model: A prototype model (`kerastl.fewshot.build`).
        new_support: Support images (or embeddings of the model's width) of
            the new classes, in any form `kerastl.fewshot.build` takes.
        class_names: Names of the new classes (default: those of the data).
        feature_cache: A `kerastl.training.FeatureCache`.
        batch_size: Images per backbone batch.

    Returns:
        The grown `keras.Model`.

    Example:
        >>> model = kerastl.fewshot.add_classes(model, {"mug": mug_photos})
    """
    head = prototype_head(model)
    found = features("new_support", model, new_support, width=pooled_width(model),
                     feature_cache=feature_cache, batch_size=batch_size, class_names=class_names)
    old, new = new_class_names("new_support", head, found)
    m = len(new)
    check_every_class("new_support", found.y, m, new)
    whitening = head.whitening
    added = proto.class_prototypes(_mapped(found.x, whitening), found.y, m,
                                   metric=AVERAGING[head.metric])
    grown = PrototypeHead(len(old) + m, metric=head.metric, scale=head.scale, rank=head.rank,
                          pooling=head.pooling, class_names=old + new, name=head.name)
    result = with_head(model, grown)
    _set_weights(grown, np.concatenate([head.prototypes, added]), whitening)
    return result


__all__ = ["add_classes", "base_model", "build", "new_class_names", "pooled_width",
           "prototype_head", "with_head"]
