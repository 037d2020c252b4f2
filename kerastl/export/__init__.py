"""Exporters: SavedModel, `.keras` and quantized TFLite, verified and versioned.

* `kerastl.export.export` (re-exported as `kerastl.export`): writes
  ``directory/<version>/`` and returns an `ExportReport`.
* `kerastl.export.load` (`kerastl.load`): reloads an exported model.
* `kerastl.export.predict_tflite` (`kerastl.predict_tflite`): runs a `.tflite` file.
* `kerastl.export.read_tflite_metadata`: the labels stored inside a `.tflite` file.
"""

import sys
import types

from kerastl.export.config import FORMATS, QUANTIZATIONS, ExportConfig
from kerastl.export.keras_format import load
from kerastl.export.manifest import read_manifest
from kerastl.export.package import export
from kerastl.export.report import ArtifactReport, ExportReport
from kerastl.export.tflite import QuantizationError, predict_tflite
from kerastl.export.tflite_metadata import read_tflite_metadata

__all__ = [
    "FORMATS", "QUANTIZATIONS", "ExportConfig", "ArtifactReport", "ExportReport",
    "QuantizationError", "export", "load", "predict_tflite", "read_manifest",
    "read_tflite_metadata",
]


class _CallableModule(types.ModuleType):
    """Makes ``kerastl.export(...)`` call `export` while ``kerastl.export.<name>`` still works.

    `kerastl.export` is both this subpackage and the main function of it; with
    this, ``kerastl/__init__.py`` can re-export the module itself
    (``from kerastl import export``) and neither use shadows the other.
    """

    __call__ = staticmethod(export)


sys.modules[__name__].__class__ = _CallableModule
