"""kerastl.fit with the real MobileNetV2 ImageNet weights on real photos."""

import pytest

import kerastl
import kerastl.data
from kerastl.training import fit


@pytest.mark.integration
def test_two_stage_reaches_the_linear_probe_on_flowers(assets, keras_home):
    data = kerastl.data.from_directory(assets / "datasets" / "flowers_kaggle_227",
                                       image_size=160, seed=0)
    model = kerastl.build("mobilenet_v2", data.num_classes, input_shape=160,
                          class_names=data.class_names)
    report = fit(model, data, recipe="two_stage", seed=0, verbose=0)
    head, tune = report.stages
    assert (head.cached, tune.cached) == ("features", "prefix")
    # One pass of the frozen prefix over train + validation for the whole run.
    assert report.backbone_batches == 25 + 7
    assert report.best["val_accuracy"] >= 0.88
    # The model is left at its best epoch and compiled for integer labels.
    result = model.evaluate(data.validation, return_dict=True, verbose=0)
    assert result["accuracy"] == pytest.approx(report.best["val_accuracy"], abs=0.011)
