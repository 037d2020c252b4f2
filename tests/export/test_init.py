"""Tests of kerastl/export/__init__.py: the callable module and its public names."""

import numpy as np
import pytest
from harness import tiny_kerastl_model

import kerastl
import kerastl.export
from kerastl.export.config import make_config

SIZE = 16


def test_calling_the_module_exports_and_its_names_still_work(tmp_path):
    model = tiny_kerastl_model(2, size=SIZE, class_names=["a", "b"])
    report = kerastl.export(model, tmp_path, formats=("keras",), verbose=0)
    assert isinstance(report, kerastl.export.ExportReport)
    assert (tmp_path / report.version / "model.keras").is_file()
    loaded = kerastl.export.load(tmp_path)  # a submodule name after a call
    x = np.full((1, SIZE, SIZE, 3), 100.0, "float32")
    np.testing.assert_array_equal(loaded(x).numpy().argmax(-1), model(x).numpy().argmax(-1))
    assert kerastl.export.read_manifest(tmp_path / report.version)["class_names"] == ["a", "b"]


def test_every_listed_format_and_quantization_is_accepted_and_nothing_else():
    common = dict(num_calibration_samples=1, version=None, overwrite=False, verbose=0)
    data = np.zeros((1, 4, 4, 3))
    for fmt in kerastl.export.FORMATS:
        assert make_config(formats=fmt, quantization="float32", representative_data=None,
                           **common).formats == (fmt,)
    for quantization in kerastl.export.QUANTIZATIONS:
        cfg = make_config(formats="tflite", quantization=quantization,
                          representative_data=data, **common)
        assert cfg.tflite_quantizations == (quantization,)
    with pytest.raises(ValueError, match="Did you mean 'dynamic'"):
        kerastl.export(None, "unused", quantization="dinamic")
    with pytest.raises(ValueError, match="`formats` must be one of"):
        kerastl.export(None, "unused", formats="onnx")


def test_options_are_keyword_only_and_misspellings_are_refused(tmp_path):
    with pytest.raises(TypeError, match="positional"):
        kerastl.export(None, tmp_path, ("keras",))
    with pytest.raises(TypeError, match="unexpected keyword"):
        kerastl.export(None, tmp_path, quantisation="int8")
    assert not any(tmp_path.iterdir())
