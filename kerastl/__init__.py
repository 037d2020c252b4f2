"""kerastl: transfer learning for Keras 3 on TensorFlow.

From a folder of photos to a fine-tuned model and a quantized ``.tflite``::

    import kerastl
    data = kerastl.data.from_directory("photos/", image_size=224, validation_split=0.2)
    model = kerastl.build("mobilenet_v2", num_classes=data.num_classes,
                          class_names=data.class_names)
    report = kerastl.fit(model, data.train, data.validation)
    kerastl.export(model, "saved_models/flowers", representative_data=data.train)

``import kerastl`` is cheap: it imports no TensorFlow. Each public name is
imported the first time it is used (PEP 562 module ``__getattr__``), so the
``kerastl`` command starts in a fraction of a second. kerastl's serializable
layers (`kerastl.ImagePreprocessing`, `kerastl.ClassificationHead`) and
optimizer (`kerastl.training.ScaledAdamW`) are registered with Keras as soon
as Keras is imported, by anyone, after ``import kerastl`` (or at once when
Keras was already imported), so ``keras.saving.load_model("model.keras")``
finds them without touching any kerastl attribute.

Example:
    >>> import kerastl, keras
    >>> model = keras.saving.load_model("runs/flowers/model.keras")
    >>> kerastl.model_info(model).class_names
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

# Public name -> the module that defines it (imported on first use).
_LAZY_NAMES = {
    "BackboneSpec": "kerastl.backbones",
    "get_backbone_spec": "kerastl.backbones",
    "list_backbones": "kerastl.backbones",
    "register_backbone": "kerastl.backbones",
    "unregister_backbone": "kerastl.backbones",
    "load": "kerastl.export",
    "predict_tflite": "kerastl.export",
    "TrainableSummary": "kerastl.freezing",
    "set_trainable_blocks": "kerastl.freezing",
    "HeadConfig": "kerastl.heads",
    "ClassificationHead": "kerastl.layers",
    "ImagePreprocessing": "kerastl.layers",
    "FeatureCache": "kerastl.training",
    "FitReport": "kerastl.training",
    "fit": "kerastl.training",
    "SearchSpace": "kerastl.tuning",
    "TuneResult": "kerastl.tuning",
    "tune": "kerastl.tuning",
    "build": "kerastl.model",
    "ModelInfo": "kerastl.accessors",
    "feature_extractor": "kerastl.accessors",
    "get_backbone": "kerastl.accessors",
    "get_blocks": "kerastl.accessors",
    "get_head": "kerastl.accessors",
    "model_info": "kerastl.accessors",
    "Predictor": "kerastl.predictor",
    "load_predictor": "kerastl.predictor",
    "distill": "kerastl.distillation",
    "extend": "kerastl.fewshot.incremental",
    "rank_backbones": "kerastl.ranking",
}
# Subpackages that are public attributes (``kerastl.data.from_directory``).
_SUBMODULES = ("backbones", "data", "distribute", "export", "report", "training", "tuning",
               "weights", "predictor", "layers", "freezing", "heads", "model", "accessors",
               # transfer methods built on the core
               "adapt", "fewshot", "distillation", "peft", "multitask", "ranking")
# Imported as soon as Keras is: what registers kerastl's serializable objects.
_REGISTERING_MODULES = ("kerastl.layers", "kerastl.training.optim", "kerastl.adapt.layers",
                        "kerastl.adapt.losses", "kerastl.fewshot.layers",
                        "kerastl.distillation.losses", "kerastl.backbones.kerashub")

__all__ = sorted({*_LAZY_NAMES, "data", "distribute", "export", "report", "weights", "adapt",
                  "fewshot", "distillation", "peft", "multitask", "ranking",
                  "register_serializables", "__version__"})


def register_serializables() -> None:
    """Imports the modules that register kerastl's layers and optimizer with Keras.

    Called automatically when Keras is imported after ``import kerastl``;
    call it yourself only after replacing Keras's global custom objects.

    Example:
        >>> kerastl.register_serializables()
        >>> keras.saving.get_registered_object("kerastl>ClassificationHead")
    """
    for name in _REGISTERING_MODULES:
        importlib.import_module(name)


class _WrappedLoader(importlib.abc.Loader):
    """Runs a module's own loader and tells `_RegistrationHook` when it is done."""

    def __init__(self, loader, hook, name):
        self._loader, self._hook, self._name = loader, hook, name

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        # Give the module its real loader (resource readers ask it).
        module.__loader__ = self._loader
        if module.__spec__ is not None:
            module.__spec__.loader = self._loader
        self._hook.started(self._name)
        ok = False
        try:
            self._loader.exec_module(module)
            ok = True
        finally:
            self._hook.finished(self._name, ok)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class _RegistrationHook(importlib.abc.MetaPathFinder):
    """Calls `register_serializables` once Keras is imported and no kerastl module is
    half-imported (registering in the middle of one would be a circular import)."""

    kerastl_hook = True

    def __init__(self):
        self.depth = 0
        self.pending = False
        self.done = False

    def find_spec(self, fullname, path, target=None):
        if self.done or not (fullname == "keras" or fullname.startswith("kerastl.")):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _WrappedLoader(spec.loader, self, fullname)
                return spec
        return None

    def started(self, name):
        if name != "keras":
            self.depth += 1

    def finished(self, name, ok):
        if name == "keras":
            self.pending = ok
        else:
            self.depth -= 1
        if ok and self.pending and self.depth == 0 and not self.done:
            self.done = True
            _remove_hook()
            register_serializables()


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "kerastl_hook", False)]


def _install_hook() -> None:
    _remove_hook()
    if "keras" in sys.modules:  # Keras (and so TensorFlow) is loaded already: register now.
        register_serializables()
        return
    sys.meta_path.insert(0, _RegistrationHook())


def __getattr__(name: str):
    module_name = _LAZY_NAMES.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(module_name), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'kerastl' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted({*globals(), *_LAZY_NAMES, *_SUBMODULES})


_install_hook()
