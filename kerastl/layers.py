"""Serializable layers that every kerastl model is made of.

A model built by `kerastl.build` is a plain functional `keras.Model`::

    image (float32, RGB in [0, 255])
      -> augmentation   (optional `keras.Sequential`, active only in training)
      -> preprocessing  (`ImagePreprocessing`: the backbone's own input scaling)
      -> backbone       (a Keras Applications model or a `HubBackbone` layer)
      -> head           (`ClassificationHead`: pooling, dropout, dense layers)

Both custom layers are registered serializable under the ``kerastl`` package,
so ``model.save("m.keras")`` and ``keras.saving.load_model`` work in
``safe_mode`` with no `custom_objects`.
"""

from __future__ import annotations

import keras
from keras import ops

from kerastl._validation import check_float, check_int, check_one_of

PREPROCESSING_MODES = ("tf", "torch", "caffe", "unit", "none")
TASKS = ("multiclass", "binary", "multilabel", "regression")
POOLINGS = ("avg", "max")

_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="kerastl")
class ImagePreprocessing(keras.layers.Layer):
    """Maps RGB images in [0, 255] to the input range a backbone was trained on.

    Modes match `keras.applications.<family>.preprocess_input`:

    * ``"tf"``: scale to [-1, 1] (MobileNet, MobileNetV2, ResNetV2, Inception, Xception, NASNet).
    * ``"torch"``: scale to [0, 1], then normalize with the ImageNet mean and std (DenseNet).
    * ``"caffe"``: RGB to BGR, then subtract the ImageNet mean (ResNet, VGG).
    * ``"unit"``: scale to [0, 1] (TF Hub image models).
    * ``"none"``: pass through (backbones that include their own preprocessing:
      EfficientNet, EfficientNetV2, MobileNetV3, ConvNeXt).

    Args:
        mode: One of the modes above.
        backbone: Name of the backbone the preprocessing belongs to; kept in the
            config so a saved model remembers its backbone (see `kerastl.model_info`).
        **kwargs: Standard layer arguments (`name`, `dtype`).

    Example:
        >>> layer = kerastl.layers.ImagePreprocessing("tf", backbone="mobilenet_v2")
        >>> float(layer(keras.ops.ones((1, 2, 2, 3)) * 255.0)[0, 0, 0, 0])
        1.0
    """

    def __init__(self, mode: str = "tf", *, backbone: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.mode = check_one_of("mode", mode, PREPROCESSING_MODES)
        self.backbone = backbone

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "unit":
            return x / 255.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_TORCH_MEAN, dtype=self.compute_dtype)
            std = ops.convert_to_tensor(_TORCH_STD, dtype=self.compute_dtype)
            return (x / 255.0 - mean) / std
        if self.mode == "caffe":
            x = ops.flip(x, axis=-1)
            return x - ops.convert_to_tensor(_CAFFE_MEAN_BGR, dtype=self.compute_dtype)
        return x

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"mode": self.mode, "backbone": self.backbone})
        return config


def output_activation(task: str) -> str | None:
    """Returns the output activation for a task ("softmax", "sigmoid" or None)."""
    return {"multiclass": "softmax", "binary": "sigmoid", "multilabel": "sigmoid",
            "regression": None}[check_one_of("task", task, TASKS)]


def task_loss(task: str, *, one_hot: bool = False, label_smoothing: float = 0.0):
    """Returns the Keras loss of a task: the one definition of task -> loss in kerastl.

    Args:
        task: ``"multiclass"``, ``"binary"``, ``"multilabel"`` or ``"regression"``.
        one_hot: Multiclass labels are one-hot vectors (``CategoricalCrossentropy``,
            which supports label smoothing) instead of integer class ids
            (``SparseCategoricalCrossentropy``).
        label_smoothing: Label smoothing of the cross-entropy losses (needs
            ``one_hot=True`` for ``"multiclass"``).

    Returns:
        A `keras.losses.Loss`.

    Example:
        >>> kerastl.layers.task_loss("multiclass").name
        'sparse_categorical_crossentropy'
    """
    check_one_of("task", task, TASKS)
    smoothing = check_float("label_smoothing", label_smoothing, minimum=0.0, maximum=1.0,
                            max_inclusive=False)
    if task == "multiclass":
        if one_hot:
            return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)
        if smoothing:
            raise ValueError("`label_smoothing` needs one-hot labels (one_hot=True) for "
                             f"task='multiclass'. Received: label_smoothing={label_smoothing!r}")
        return keras.losses.SparseCategoricalCrossentropy()
    if task in ("binary", "multilabel"):
        return keras.losses.BinaryCrossentropy(label_smoothing=smoothing)
    return keras.losses.MeanSquaredError()


def task_metrics(task: str, *, one_hot: bool = False, num_outputs: int | None = None) -> list:
    """Returns new Keras metric objects of a task: ``accuracy`` (``mae`` for regression).

    Args:
        task: The task.
        one_hot: Multiclass labels are one-hot vectors (else integer class ids).
        num_outputs: For ``"multilabel"``: the number of labels; then an ``auc``
            metric (one per label, averaged) is added.

    Returns:
        A list of `keras.metrics.Metric`.

    Example:
        >>> [m.name for m in kerastl.layers.task_metrics("binary")]
        ['accuracy']
    """
    check_one_of("task", task, TASKS)
    if task == "multiclass":
        if one_hot:
            return [keras.metrics.CategoricalAccuracy(name="accuracy")]
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    if task == "regression":
        return [keras.metrics.MeanAbsoluteError(name="mae")]
    metrics = [keras.metrics.BinaryAccuracy(name="accuracy")]
    if task == "multilabel" and num_outputs is not None:
        metrics.append(keras.metrics.AUC(multi_label=True, num_labels=int(num_outputs),
                                         name="auc"))
    return metrics


@keras.saving.register_keras_serializable(package="kerastl")
class ClassificationHead(keras.layers.Layer):
    """The task head: global pooling, dropout, optional hidden layers, output layer.

    The head takes either a 4D feature map (it pools it) or already pooled 2D
    features (TF Hub feature vectors). It is split in two steps so the training
    code can cache pooled features and train only `classify`:
    ``head(x) == head.classify(head.pool(x))``.

    The output `Dense` layer always computes in float32, also under a mixed
    precision policy.

    Args:
        num_outputs: Units of the output layer (1 for ``"binary"``).
        task: ``"multiclass"``, ``"binary"``, ``"multilabel"`` or ``"regression"``.
        pooling: ``"avg"`` or ``"max"`` for 4D inputs.
        dropout: Dropout rate before each dense layer, in [0, 1).
        hidden_units: Sizes of hidden dense layers between pooling and output.
        activation: Activation of the hidden layers.
        class_names: Optional names of the outputs, stored in the config.
        **kwargs: Standard layer arguments (`name`, `dtype`, `trainable`).

    Example:
        >>> head = kerastl.layers.ClassificationHead(3, task="multiclass", dropout=0.1)
        >>> head(keras.ops.ones((2, 4, 4, 8))).shape
        (2, 3)
    """

    def __init__(self, num_outputs: int, *, task: str = "multiclass", pooling: str = "avg",
                 dropout: float = 0.2, hidden_units=(), activation: str = "relu",
                 class_names=None, **kwargs):
        super().__init__(**kwargs)
        self.num_outputs = check_int("num_outputs", num_outputs, minimum=1)
        self.task = check_one_of("task", task, TASKS)
        self.pooling = check_one_of("pooling", pooling, POOLINGS)
        self.dropout = check_float("dropout", dropout, minimum=0.0, maximum=1.0,
                                   max_inclusive=False)
        self.hidden_units = tuple(check_int("hidden_units", u, minimum=1) for u in hidden_units)
        self.activation = activation
        keras.activations.get(activation)  # raises on an unknown activation
        self.class_names = None if class_names is None else [str(c) for c in class_names]
        if self.class_names is not None and len(self.class_names) != self._expected_names():
            raise ValueError(
                f"`class_names` must have {self._expected_names()} entries for "
                f"task={self.task!r} with num_outputs={self.num_outputs}. "
                f"Received: class_names={self.class_names!r}")
        pool_cls = (keras.layers.GlobalAveragePooling2D if self.pooling == "avg"
                    else keras.layers.GlobalMaxPooling2D)
        self.pool_layer = pool_cls(name="pool")
        self.dense_layers = [keras.layers.Dense(u, activation=activation, name=f"hidden_{i}")
                             for i, u in enumerate(self.hidden_units)]
        self.dropout_layers = [keras.layers.Dropout(self.dropout, name=f"dropout_{i}")
                               for i in range(len(self.hidden_units) + 1)]
        self.output_layer = keras.layers.Dense(
            self.num_outputs, activation=output_activation(self.task),
            dtype="float32", name="predictions")

    def _expected_names(self) -> int:
        return 2 if self.task == "binary" else self.num_outputs

    def build(self, input_shape):
        width = input_shape[-1]
        for dense in self.dense_layers:
            dense.build((None, width))
            width = dense.units
        self.output_layer.build((None, width))
        self.built = True

    def pool(self, features):
        """Pools a 4D feature map to 2D; returns 2D features unchanged."""
        if len(features.shape) == 4:
            return self.pool_layer(features)
        return features

    def classify(self, pooled, training=None):
        """Applies dropout, hidden layers and the output layer to pooled features."""
        x = pooled
        for dropout, dense in zip(self.dropout_layers, self.dense_layers):
            x = dense(dropout(x, training=training))
        return self.output_layer(self.dropout_layers[-1](x, training=training))

    def call(self, inputs, training=None):
        return self.classify(self.pool(inputs), training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_outputs)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_outputs": self.num_outputs, "task": self.task, "pooling": self.pooling,
            "dropout": self.dropout, "hidden_units": list(self.hidden_units),
            "activation": self.activation, "class_names": self.class_names,
        })
        return config
