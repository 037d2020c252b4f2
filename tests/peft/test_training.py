import numpy as np
import pytest

import kerastl
from harness import separable_images
from tests.peft._models import mixed_model

pytestmark = pytest.mark.filterwarnings("ignore::kerastl.accessors.UnregisteredBackboneWarning")


@pytest.fixture(scope="module")
def data():
    return separable_images(32, 3, 16), separable_images(16, 3, 16, seed=1)


def _weights(model):
    return {v.path: v.numpy().copy() for v in kerastl.get_backbone(model).weights}


def test_fit_with_lora_trains_only_the_low_rank_factors_and_head(data):
    model = mixed_model()
    before = _weights(model)
    report = kerastl.fit(model, *data, peft={"method": "lora", "rank": 2, "blocks": 2},
                         recipe="fine_tune", epochs=1, verbose=0, seed=0)
    [stage] = report.stages
    assert stage.name == "lora" and stage.trainable_blocks == 2
    assert stage.trainable_weights == [
        "einsum_c/lora_kernel_a", "einsum_c/lora_kernel_b", "conv_d/lora_kernel_a",
        "conv_d/lora_kernel_b", "head/predictions/kernel", "head/predictions/bias"]
    after = _weights(model)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    assert changed == set()  # pretrained kernels, biases and BN untouched
    assert np.abs(model.get_layer("backbone").get_layer("conv_d").lora_kernel_b.numpy()).max() > 0
    assert {"accuracy", "loss"} <= set(stage.best)


def test_fit_with_bitfit_changes_only_biases_and_bn(data):
    model = mixed_model()
    before = _weights(model)
    report = kerastl.fit(model, *data, peft="bitfit", recipe="fine_tune", epochs=1, verbose=0,
                         seed=0, early_stopping=False)
    assert [s.name for s in report.stages] == ["bitfit"]
    after = _weights(model)
    changed = {k for k in before if not np.array_equal(before[k], after[k])}
    # BitFit's BN layer runs on batch statistics: its moving averages move too.
    assert changed == {"conv_a/bias", "bn_a/beta", "bn_a/moving_mean", "bn_a/moving_variance",
                       "dense_b/bias", "einsum_c/bias", "conv_d/bias"}


@pytest.mark.parametrize("kwargs, match", [
    ({"recipe": "progressive"}, "`recipe` must be one of 'auto', 'two_stage', 'fine_tune'"),
    ({"trainable_blocks": 2}, "`trainable_blocks` does not apply with `peft`"),
    ({"bn_training": True}, "`bn_training` does not apply with `peft`"),
])
def test_fit_options_that_clash_with_peft(data, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerastl.fit(mixed_model(), *data, peft="lora", verbose=0, **kwargs)


def test_fit_refuses_an_unknown_method(data):
    with pytest.raises(ValueError, match="`peft` must be one of 'lora', 'bitfit', 'bn_affine'"):
        kerastl.fit(mixed_model(), *data, peft="adapter", verbose=0)


def test_fit_with_peft_resumes_from_its_checkpoint(data, tmp_path):
    kwargs = dict(peft={"method": "lora", "rank": 2, "blocks": 1}, fine_tune_epochs=1,
                  verbose=0, seed=0, checkpoint_dir=tmp_path / "ckpt")
    model = mixed_model()
    first = kerastl.fit(model, *data, **kwargs)
    again = mixed_model()
    second = kerastl.fit(again, *data, **kwargs)  # every stage is done: restored, not rerun
    assert [s.name for s in second.stages] == ["head", "lora"]
    assert second.best_stage == first.best_stage
    images = data[1][0]
    np.testing.assert_allclose(again.predict(images, verbose=0), model.predict(images, verbose=0),
                               rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        kerastl.fit(mixed_model(), *data, **dict(kwargs, peft={"method": "lora", "rank": 3,
                                                               "blocks": 1}))
