"""Tests of kerastl/export/config.py: option checks before anything is written."""

import pytest

from kerastl.export import config


def _make(**overrides):
    options = dict(formats=config.FORMATS, quantization=("float32",), representative_data=None,
                   num_calibration_samples=10, version=None, overwrite=False, verbose=0)
    options.update(overrides)
    return config.make_config(**options)


def test_defaults_are_canonical_and_deduplicated():
    cfg = _make(formats=["tflite", "keras", "tflite"], quantization=("float16", "float32"))
    assert cfg.formats == ("keras", "tflite")
    assert cfg.quantizations == ("float32", "float16")
    assert cfg.tflite_quantizations == ("float32", "float16")


def test_single_string_is_accepted():
    cfg = _make(formats="saved_model", quantization="dynamic")
    assert cfg.formats == ("saved_model",)
    assert cfg.tflite_quantizations == ()  # no "tflite" format: nothing converted


def test_unknown_quantization_suggests_the_closest_name():
    with pytest.raises(ValueError, match=r"`quantization` must be one of .*Did you mean 'int8'"):
        _make(quantization=("float32", "int9"))


def test_unknown_format_and_empty_formats():
    with pytest.raises(ValueError, match="Received: formats='tf_lite'"):
        _make(formats=("tf_lite",))
    with pytest.raises(ValueError, match="at least one"):
        _make(formats=())
    with pytest.raises(TypeError, match="sequence of strings"):
        _make(formats=3)


def test_int8_without_representative_data_is_a_clear_error():
    with pytest.raises(ValueError, match="int8 quantization needs `representative_data`"):
        _make(quantization=("float32", "int8"))
    # Without the tflite format, int8 is not converted and no data is needed.
    assert _make(formats=("keras",), quantization="int8").tflite_quantizations == ()
    assert _make(quantization="int8", representative_data=[0]).quantizations == ("int8",)


@pytest.mark.parametrize("bad", ["../evil", "a/b", "..", ".", ".hidden", "", "a\\b", "x" * 200,
                                 -1, True, 1.5, "/abs"])
def test_versions_that_could_escape_are_refused(bad):
    with pytest.raises(ValueError, match="version"):
        config.check_version(bad)


@pytest.mark.parametrize("good, expected", [(None, None), (0, "0"), (12, "12"),
                                            ("v1.2-rc_3", "v1.2-rc_3")])
def test_valid_versions(good, expected):
    assert config.check_version(good) == expected


def test_other_options_are_checked():
    with pytest.raises(ValueError, match="num_calibration_samples"):
        _make(num_calibration_samples=0)
    with pytest.raises(ValueError, match="verbose"):
        _make(verbose=2)
    with pytest.raises(ValueError, match="overwrite"):
        _make(overwrite="yes")
