"""Few-shot classes: prototype classifiers, episodic evaluation, growing a trained model.

* `build`: a prototype (nearest-class-mean) classifier from a few labelled
  images per class, on a pretrained backbone's pooled features; its head is
  a serializable `PrototypeHead`, so the model saves and exports like any
  kerastl model. Optional transductive refinement and Baseline++ steps.
* `add_classes`: appends prototypes for new classes; the old ones stay bit-identical.
* `evaluate`: N-way K-shot episodes, mean accuracy with a 95% confidence interval.
* `extend` (`kerastl.extend`): adds classes to a trained classifier with
  Learning without Forgetting, EWC, a replay buffer, naive fine-tuning, or
  streaming LDA (``"slda"``: from `class_statistics`, saved while the old
  images were at hand; no old images needed later).
* `export`: an embedding ``.tflite`` plus the prototypes and a ``classify``
  signature (embeddings x prototype matrix), so an app adds a class on the
  device by averaging the embeddings of a few photos.

Data (support, queries, new classes) may be a dict ``{class_name: images}``,
a tuple ``(images, labels)``, a `tf.data.Dataset` of ``(images, labels)``
batches or a `kerastl.data.ImageData`; pooled embeddings ``(n, D)`` can
stand in for images.

Example:
    >>> model = kerastl.fewshot.build("mobilenet_v2", {"cup": cups, "pen": pens})
    >>> model = kerastl.fewshot.add_classes(model, {"mug": mugs})
    >>> print(kerastl.fewshot.evaluate(model, data.validation, ways=5, shots=1))
"""

from kerastl._lazy import attributes

# Public name -> module, imported on first use (PEP 562), so that the TensorFlow-free
# ``kerastl.cli.fewshot`` imports without TensorFlow (``kerastl --help`` stays fast).
_LAZY = {
    "add_classes": "builder", "build": "builder", "EpisodeResult": "episodes",
    "evaluate": "episodes", "mean_ci": "episodes", "OnDeviceReport": "ondevice",
    "export": "exporter", "ExtendResult": "incremental", "extend": "incremental",
    "PrototypeClassifier": "layers", "PrototypeHead": "layers",
    "ClassStatistics": "statistics", "class_statistics": "statistics",
}
# Submodules (no module is named like a function: importing one sets a package attribute).
_MODULES = ("builder", "episodes", "exporter", "incremental", "layers", "ondevice",
            "prototypes", "statistics")


__getattr__, __dir__ = attributes(__name__, _LAZY, _MODULES)


__all__ = ["ClassStatistics", "EpisodeResult", "ExtendResult", "OnDeviceReport",
           "PrototypeClassifier", "PrototypeHead", "add_classes", "build", "class_statistics",
           "evaluate", "export", "extend", "mean_ci"]
