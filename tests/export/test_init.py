"""Tests of kerastl/export/__init__.py: the public names and the callable module."""

import inspect

import kerastl
import kerastl.export


def test_module_is_callable_and_keeps_its_attributes():
    assert callable(kerastl.export)
    assert type(kerastl.export).__call__ is kerastl.export.export
    assert kerastl.export.QUANTIZATIONS == ("float32", "dynamic", "float16", "int8")
    assert kerastl.export.FORMATS == ("saved_model", "keras", "tflite")
    params = inspect.signature(kerastl.export.export).parameters
    assert [p for p in params if params[p].kind is inspect.Parameter.KEYWORD_ONLY] == [
        "formats", "quantization", "representative_data", "num_calibration_samples",
        "eval_data", "class_names", "version", "overwrite", "verbose"]


def test_calling_the_module_validates_like_the_function(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="Did you mean 'dynamic'"):
        kerastl.export(None, tmp_path, quantization="dinamic")
    with pytest.raises(TypeError, match="unexpected keyword"):
        kerastl.export(None, tmp_path, quantisation="int8")
