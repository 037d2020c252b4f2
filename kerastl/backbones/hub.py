"""`HubBackbone`: TF Hub and Kaggle Models SavedModels as Keras 3 layers.

`tensorflow_hub.KerasLayer` is a Keras 2 (tf_keras) layer and cannot be used
in a Keras 3 model; `keras.layers.TFSMLayer` calls signatures only, with no
``training`` flag. `HubBackbone` loads a TF2 SavedModel with
`tensorflow_hub.load` (so tfhub.dev and Kaggle handles, the ``TFHUB_CACHE_DIR``
cache and local directories all work) and makes it a first-class Keras 3 layer:

* the SavedModel's variables are the layer's weights. Each `tf.Variable` is
  wrapped in a `keras.Variable` that *shares its storage* (the Keras variable's
  value is the hub variable itself), so the optimizer updates exactly the
  variables the SavedModel computes with;
* ``obj.trainable_variables`` are trainable weights (while the layer is
  trainable), everything else is non-trainable;
* ``training`` reaches the SavedModel's ``__call__`` (only while the layer is
  trainable, as with `keras.layers.BatchNormalization`, and unless
  ``bn_training=False``), and ``obj.regularization_losses`` become the layer's
  losses while trainable.
"""

from __future__ import annotations

import os

import keras
import tensorflow as tf
import tensorflow_hub as hub

from kerastl._validation import check_int, check_keys, check_one_of
from kerastl.backbones.hub_handles import (
    TRUST_ENV,
    find_hub_model,
    is_trusted_path,
    is_url,
    resolve_handle,
)
from kerastl.backbones.hub_savedmodel import (
    concrete_functions,
    hub_variables,
    input_specs,
    select_callable,
    training_values,
)
from kerastl.backbones.spec import BackboneSpec

HUB_BACKBONE_KWARGS = ("output_key", "signature", "arguments", "input_range")
INPUT_RANGES = {(0.0, 1.0): "unit", (-1.0, 1.0): "tf", (0.0, 255.0): "none"}
SAFE_HUB_HOSTS = ("tfhub.dev", "hub.tensorflow.google.cn", "kaggle.com", "www.kaggle.com")


def _weight_name(variable) -> str:
    return variable.name.split(":")[0].replace("/", "_")


def _pick_output(result, output_key, handle):
    """Returns the tensor to use from a SavedModel's (maybe dict) output."""
    if output_key is not None:
        if not isinstance(result, dict):
            raise ValueError(f"`output_key` was given but the SavedModel of {handle!r} "
                             f"returns a single tensor. Received: output_key={output_key!r}")
        return result[check_one_of("output_key", output_key, sorted(result))]
    if isinstance(result, dict):
        if len(result) != 1:
            raise ValueError(f"The SavedModel of {handle!r} returns a dict; pass `output_key`, "
                             f"one of {sorted(result)}.")
        return next(iter(result.values()))
    return result


@keras.saving.register_keras_serializable(package="kerastl")
class HubBackbone(keras.layers.Layer):
    """A TF Hub / Kaggle Models TF2 SavedModel as a trainable Keras 3 layer.

    Works only with the TensorFlow backend. Inputs are images in the range the
    model expects (``[0, 1]`` for TF Hub image models); outputs are what the
    SavedModel returns (pooled features for feature vector models).

    Args:
        handle: ``https://tfhub.dev/...`` or ``https://www.kaggle.com/models/...``
            handle, or a local SavedModel directory.
        trainable: Whether the SavedModel's trainable variables are trained.
        input_shape: Image shape ``(height, width, channels)`` (or ``(height,
            width)``, or one int side, for RGB). When given (or fixed by the
            SavedModel) the layer checks it with a zero batch.
        output_key: Key of the output to return when the SavedModel returns a dict.
        signature: Name of a signature to call (``"serving_default"``) for
            SavedModels without a reusable ``__call__``; no ``training`` flag then.
        arguments: Extra keyword arguments for every call of the SavedModel.
        bn_training: Whether ``training=True`` reaches the SavedModel while the
            layer is trainable and the model trains, so its batch norm uses batch
            statistics and updates its moving averages (and its dropout, if any,
            is active). False fine-tunes the variables with the SavedModel in
            inference mode, like ``bn_training=False`` of `kerastl.build`.
        name: Layer name.
        dtype: Layer dtype policy; the SavedModel itself computes in its own dtype.

    Example:
        >>> layer = kerastl.backbones.hub.HubBackbone(
        ...     "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5",
        ...     input_shape=(224, 224, 3), trainable=True)
        >>> layer(keras.ops.zeros((2, 224, 224, 3))).shape
        TensorShape([2, 1280])
    """

    def __init__(self, handle, *, trainable: bool = False, input_shape=None, output_key=None,
                 signature=None, arguments=None, bn_training: bool = True, name=None,
                 dtype=None):
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError("HubBackbone needs the TensorFlow backend of Keras 3. "
                                      f"Received: backend={keras.backend.backend()!r}")
        super().__init__(trainable=trainable, name=name, dtype=dtype)
        self.handle = os.fspath(handle)
        self.hub_input_shape = _check_shape(input_shape)
        self.output_key = output_key
        self.signature = signature
        self.arguments = _check_arguments(arguments)
        self.bn_training = bool(bn_training)
        obj = hub.load(resolve_handle(self.handle))
        fn, self._input_name = select_callable(obj, signature, self.handle)
        self._hub = _Untracked(obj=obj, fn=fn, regularization_losses=list(
            getattr(obj, "regularization_losses", None) or []))
        self._training_values = training_values(fn, self._input_name)
        self._accepted_specs = input_specs(fn, self._input_name)
        _pick_output(concrete_functions(fn)[0].structured_outputs, output_key, self.handle)
        self._track_hub_variables(*hub_variables(obj, fn))
        self._build_at_init()
        probe_shape = self.hub_input_shape or self.saved_input_shape
        self._feature_shape = self._probed_shape = None
        if probe_shape is not None and None not in probe_shape:
            self._feature_shape = self._probe(probe_shape)
            self._probed_shape = probe_shape

    def _track_hub_variables(self, trainable, non_trainable):
        with keras.name_scope(self.name):
            for variables, is_trainable in ((trainable, True), (non_trainable, False)):
                for v in variables:
                    wrapped = keras.Variable(v, trainable=is_trainable, dtype=v.dtype,
                                             autocast=False, name=_weight_name(v))
                    if wrapped.value is not v:
                        raise RuntimeError(f"Could not share the storage of hub variable "
                                           f"{v.name} with a Keras variable.")
                    self._track_variable(wrapped)

    @property
    def saved_input_shape(self) -> tuple | None:
        """The image shape fixed by the SavedModel's input signature, or None."""
        shapes = {tuple(spec.shape.as_list()[1:]) for spec in self._accepted_specs}
        if len(shapes) == 1:
            shape = shapes.pop()
            return shape if len(shape) == 3 and None not in shape else None
        return None

    @property
    def feature_dim(self) -> int | None:
        """Width of the output features, known once an input shape was probed."""
        return None if self._feature_shape is None else self._feature_shape[-1]

    @property
    def input_dtype(self) -> tf.DType:
        """The dtype the SavedModel takes images in (usually float32)."""
        return self._accepted_specs[0].dtype

    def _trace(self, shape):
        """Traces the SavedModel's call on images of `shape` (raises if it does not fit)."""
        spec = tf.TensorSpec((None,) + tuple(shape), self.input_dtype)
        try:
            return tf.function(lambda x: self._invoke(x, training=False)).get_concrete_function(
                spec)
        except (ValueError, TypeError) as err:
            accepted = ", ".join(str(tuple(s.shape.as_list())) for s in self._accepted_specs)
            raise ValueError(
                f"The SavedModel of {self.handle!r} does not accept images of shape "
                f"{(None,) + tuple(shape)}: it accepts {accepted}. Pass an "
                f"`input_shape` it accepts.{_error_detail(err)}") from err

    def _probe(self, shape) -> tuple:
        """Runs the SavedModel on a zero batch of `shape`; returns the output shape."""
        self._trace(shape)
        images = tf.zeros((1,) + tuple(shape), self.input_dtype)
        try:
            if tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context():
                strategy = tf.distribute.get_strategy()  # mirrored variables: run per replica
                out = strategy.experimental_local_results(strategy.run(
                    self._invoke, args=(images,), kwargs={"training": False}))[0]
            else:
                out = self._invoke(images, training=False)
        except tf.errors.OpError as err:
            raise ValueError(
                f"The SavedModel of {self.handle!r} failed on a zero batch of images of shape "
                f"{(1,) + tuple(shape)}; pass an `input_shape` it accepts.{_error_detail(err)}"
            ) from err
        return tuple(out.shape[1:])

    def _invoke(self, images, training: bool):
        fn = self._hub.fn
        kwargs = dict(self.arguments or {})
        if self._input_name is not None:
            result = fn(**{self._input_name: images}, **kwargs)
        else:
            if self._training_values:
                kwargs["training"] = training if training in self._training_values else False
            result = fn(images, **kwargs)
        return _pick_output(result, self.output_key, self.handle)

    def call(self, inputs, training=None):
        images = tf.cast(inputs, self.input_dtype)
        training = bool(training) and self.trainable and self.bn_training
        outputs = self._invoke(images, training=training)
        if self.trainable:
            for loss_fn in self._hub.regularization_losses:
                self.add_loss(loss_fn())
        return tf.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        input_shape = tuple(input_shape)
        if tuple(input_shape[1:]) == self._probed_shape:
            return (input_shape[0],) + self._feature_shape
        traced = self._trace(input_shape[1:])
        return (input_shape[0],) + tuple(traced.structured_outputs.shape[1:])

    def get_config(self):
        config = super().get_config()
        config.update({
            "handle": self.handle,
            "input_shape": None if self.hub_input_shape is None else list(self.hub_input_shape),
            "output_key": self.output_key, "signature": self.signature,
            "arguments": None if self.arguments is None else dict(self.arguments),
            "bn_training": self.bn_training,
        })
        return config

    @classmethod
    def from_config(cls, config):
        handle = config["handle"]
        host = handle.split("://", 1)[-1].split("/", 1)[0].lower() if is_url(handle) else None
        if host is not None and host not in SAFE_HUB_HOSTS and _in_safe_mode():
            raise ValueError(
                f"Loading a HubBackbone from {handle!r} is disallowed in safe mode: the handle "
                f"is neither a local directory nor on {', '.join(SAFE_HUB_HOSTS)}, and a "
                "SavedModel runs its own TensorFlow graph. If you trust it, load with "
                "`safe_mode=False`.")
        if host is None and _in_safe_mode() and not is_trusted_path(handle):
            raise ValueError(
                f"Loading a HubBackbone from the local SavedModel {handle!r} is disallowed in "
                "safe mode: loading it runs that SavedModel's TensorFlow graph, which the "
                ".keras file does not contain and nobody checked. If you trust it, load inside "
                f"`kerastl.backbones.hub_handles.trusted_hub_models({handle!r})`, add it to "
                f"${TRUST_ENV}, or load with `safe_mode=False`.")
        return super().from_config(config)


class _Untracked:
    """Holds the loaded SavedModel out of Keras / TF object tracking.

    Its variables are tracked once, as the layer's Keras variables; the loaded
    object itself must not become layer state or a second checkpoint path.
    """

    def __init__(self, *, obj, fn, regularization_losses):
        self.obj = obj
        self.fn = fn
        self.regularization_losses = regularization_losses


def _check_arguments(arguments):
    if arguments is None:
        return None
    if not isinstance(arguments, dict) or not all(isinstance(k, str) for k in arguments):
        raise TypeError("`arguments` must be a dict of keyword arguments for the SavedModel. "
                        f"Received: arguments={arguments!r}")
    return dict(arguments)


def _error_detail(err: Exception) -> str:
    """Returns the informative line of a TensorFlow error, or "" for signature mismatches."""
    text = str(getattr(err, "message", None) or err)
    if text.startswith("Could not find matching concrete function"):
        return ""  # The message already lists the accepted shapes.
    noise = ("[[", "Detected at node", "<stack traces", "Graph execution error")
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.strip().startswith(noise)]
    return f" ({lines[-1][:300]})" if lines else ""


def _in_safe_mode() -> bool:
    from keras.src.saving import serialization_lib

    return serialization_lib.in_safe_mode() is not False


def _check_shape(input_shape):
    """Returns an input shape (an int side, ``(h, w)`` or ``(h, w, c)``) as ``(h, w, c)``."""
    if input_shape is None:
        return None
    if isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (input_shape, input_shape)
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else ()
    if len(shape) == 2:
        shape = shape + (3,)
    if len(shape) != 3:
        raise ValueError("`input_shape` must be an int or (height, width[, channels]). "
                         f"Received: input_shape={input_shape!r}")
    return tuple(check_int("input_shape", d, minimum=1) for d in shape)


def _preprocessing_mode(input_range) -> str:
    try:
        key = tuple(float(v) for v in input_range)
    except (TypeError, ValueError):
        key = None
    if key not in INPUT_RANGES:
        allowed = ", ".join(str(tuple(int(v) for v in r)) for r in INPUT_RANGES)
        raise ValueError(f"`input_range` must be one of {allowed}. "
                         f"Received: input_range={input_range!r}")
    return INPUT_RANGES[key]


def resolve_hub_backbone(handle, *, input_shape=None, trainable: bool = False,
                         backbone_kwargs=None, bn_training: bool = True
                         ) -> tuple[HubBackbone, BackboneSpec]:
    """Loads a TF Hub backbone for `kerastl.build("hub:<handle>")`.

    Args:
        handle: TF Hub / Kaggle Models handle or local SavedModel directory.
        input_shape: Image shape, as for `HubBackbone`; defaults to the
            size of a known model (see `kerastl.backbones.hub_handles`) or the
            size the SavedModel fixes. Required for other handles.
        trainable: Whether the backbone is fine-tuned.
        backbone_kwargs: Optional ``output_key``, ``signature``, ``arguments``
            (see `HubBackbone`) and ``input_range``: the pixel range the model
            expects, ``(0, 1)`` (default), ``(-1, 1)`` or ``(0, 255)``.
        bn_training: Whether the SavedModel runs in training mode while it is
            fine-tuned (see `HubBackbone`).

    Returns:
        The `HubBackbone` layer (named ``"backbone"``) and its `BackboneSpec`
        (``source="hub"``, one block: unfreeze depth is 0 or ``"all"``).

    Example:
        >>> layer, spec = kerastl.backbones.hub.resolve_hub_backbone(
        ...     "https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/feature_vector/5")
        >>> spec.preprocessing, spec.default_input_size, spec.feature_dim
        ('unit', 224, 1280)
    """
    options = check_keys("backbone_kwargs", backbone_kwargs, HUB_BACKBONE_KWARGS)
    known = find_hub_model(os.fspath(handle))
    mode = _preprocessing_mode(options.pop("input_range", known.input_range if known else (0, 1)))
    shape = _check_shape(input_shape)
    if shape is None and known is not None:
        shape = (known.input_size, known.input_size, 3)
    layer = HubBackbone(handle, trainable=trainable, input_shape=shape, name="backbone",
                        bn_training=bn_training, **options)
    fixed = layer.saved_input_shape
    shape = shape or fixed
    if shape is None:
        raise ValueError(
            f"`input_shape` is required for the TF Hub handle {layer.handle!r}: it is not a "
            "known model (see kerastl.backbones.hub_handles.KNOWN_HUB_MODELS) and its "
            "SavedModel accepts any image size. Received: input_shape=None")
    spec = BackboneSpec(
        name=f"hub:{layer.handle}", constructor=None, preprocessing=mode,
        default_input_size=known.input_size if known else shape[0],
        min_input_size=fixed[0] if fixed else (known.min_input_size if known else shape[0]),
        feature_dim=layer.feature_dim, num_blocks=1, block_pattern="",
        num_params=layer.count_params(), family=known.family if known else "hub",
        kwargs={"output_key": None, "signature": None, "arguments": None,
                "input_range": (0, 1)},
        source="hub", fixed_input_size=(fixed[0],) if fixed else ())
    return layer, spec
