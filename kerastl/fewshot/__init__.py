"""Few-shot classes: prototype classifiers, episodic evaluation, growing a trained model.

* `build`: a prototype (nearest-class-mean) classifier from a few labelled
  images per class, on a pretrained backbone's pooled features; its head is
  a serializable `PrototypeHead`, so the model saves and exports like any
  kerastl model. Optional transductive refinement and Baseline++ steps.
* `add_classes`: appends prototypes for new classes; the old ones stay bit-identical.
* `evaluate`: N-way K-shot episodes, mean accuracy with a 95% confidence interval.
* `extend` (`kerastl.extend`): adds classes to a trained classifier with
  Learning without Forgetting, EWC, a replay buffer, or naive fine-tuning.
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

import importlib

# Public name -> module, imported on first use (PEP 562), so that the TensorFlow-free
# ``kerastl.fewshot.cli`` imports without TensorFlow (``kerastl --help`` stays fast).
_LAZY = {
    "add_classes": "builder", "build": "builder", "EpisodeResult": "episodes",
    "evaluate": "episodes", "mean_ci": "episodes", "OnDeviceReport": "ondevice",
    "export": "exporter", "ExtendResult": "incremental", "extend": "incremental",
    "PrototypeClassifier": "layers", "PrototypeHead": "layers",
}
# Submodules (no module is named like a function: importing one sets a package attribute).
_MODULES = ("builder", "cli", "episodes", "exporter", "incremental", "layers", "ondevice",
            "prototypes")


def __getattr__(name):
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"kerastl.fewshot.{module}"), name)
    elif name in _MODULES:
        value = importlib.import_module(f"kerastl.fewshot.{name}")
    else:
        raise AttributeError(f"module 'kerastl.fewshot' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))


__all__ = ["EpisodeResult", "ExtendResult", "OnDeviceReport", "PrototypeClassifier",
           "PrototypeHead", "add_classes", "build", "evaluate", "export", "extend", "mean_ci"]
