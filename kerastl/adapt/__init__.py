"""`kerastl.adapt`: domain adaptation, when the photos in use are not the photos trained on.

Same task, another distribution (another camera, lighting, weather): train
on labelled source photos, adapt to a folder of unlabelled target photos,
and keep a plain kerastl model (export, save/load and serving unchanged).

* `fit`: source training + one method or ``"auto"``, returns an `AdaptReport`.
* `shift_report`: is there a shift at all (domain classifier, MMD, confidence)?
* Methods: `adabn`, `tent` (`kerastl.adapt.batchnorm`); `coral`, `deep_coral`,
  `mmd`, `dann` (`kerastl.adapt.alignment`); `daume` (`kerastl.adapt.daume`).
* Keras parts: `GradientReversal`, `coral_loss`, `mmd_loss`, `CoralLoss`,
  `MMDLoss` (serializable under the ``kerastl`` package).

Example:
    >>> data = kerastl.data.from_directory("flowers/", image_size=224)
    >>> model = kerastl.build("mobilenet_v2", data.num_classes, class_names=data.class_names)
    >>> report = kerastl.adapt.fit(model, data, "phone_photos/")
    >>> print(report)
"""

import importlib

_LAZY = {
    "fit": "fit", "METHODS": "methods", "AUTO_ORDER": "methods",
    "AdaptReport": "report", "Candidate": "report",
    "ShiftReport": "diagnosis", "shift_report": "diagnosis",
    "adabn": "batchnorm", "tent": "batchnorm", "estimate_batch_norm": "batchnorm",
    "coral": "alignment", "deep_coral": "alignment", "mmd": "alignment", "dann": "alignment",
    "daume": "daume", "fine_tune_target": "daume",
    "GradientReversal": "layers",
    "coral_loss": "losses", "mmd_loss": "losses", "CoralLoss": "losses", "MMDLoss": "losses",
    "evaluate": "features", "as_target": "data",
}
_MODULES = ("alignment", "batchnorm", "data", "daume", "deep", "diagnosis", "features", "fit",
            "layers", "losses", "methods", "report")


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        if name in _MODULES:
            return importlib.import_module(f"kerastl.adapt.{name}")
        raise AttributeError(f"module 'kerastl.adapt' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"kerastl.adapt.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_MODULES))


__all__ = sorted(_LAZY)
