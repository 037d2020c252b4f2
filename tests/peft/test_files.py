import h5py
import keras
import numpy as np
import pytest

from harness import random_images
from kerastl import peft
from tests.peft._models import mixed_model, perturb

pytestmark = pytest.mark.filterwarnings("ignore::kerastl.accessors.UnregisteredBackboneWarning")


def _outputs(model, images):
    return keras.ops.convert_to_numpy(model(images))


@pytest.mark.parametrize("setting", [peft.PeftConfig("lora", rank=2, blocks=2),
                                     peft.PeftConfig("bitfit"), peft.PeftConfig("bn_affine")])
def test_adapter_file_round_trip_on_a_fresh_base(setting, tmp_path):
    images = random_images(4, 16)
    model = mixed_model()
    peft.apply(model, setting)
    perturb(peft.core.adapter_variables(model))
    path = peft.save(model, tmp_path / "task.peft.weights.h5")
    fresh = mixed_model()  # same seed: the same pretrained base
    assert np.abs(_outputs(fresh, images) - _outputs(model, images)).max() > 1e-3
    summary = peft.load(fresh, path)
    assert summary == peft.summarize(model) and peft.get_config(fresh) == setting
    np.testing.assert_array_equal(_outputs(fresh, images), _outputs(model, images))


def test_adapter_file_holds_only_the_adapter(tmp_path):
    model = mixed_model()
    peft.apply(model, "lora", rank=2, blocks=1)
    path = peft.save(model, tmp_path / "a.peft.weights.h5")
    with h5py.File(path) as handle:
        stored = []
        handle["variables"].visititems(
            lambda name, item: stored.append(name) if isinstance(item, h5py.Dataset) else None)
    assert sorted(stored) == sorted(["conv_d/lora_kernel_a", "conv_d/lora_kernel_b",
                                     "head/predictions/kernel", "head/predictions/bias"])
    config, facts = peft.read_config(path)
    assert config == peft.PeftConfig("lora", rank=2, blocks=1)
    assert facts["backbone"] == "tiny" and facts["num_outputs"] == 3


def test_load_refuses_another_base(tmp_path):
    model = mixed_model(3)
    peft.apply(model, "bitfit")
    path = peft.save(model, tmp_path / "a.peft.weights.h5")
    with pytest.raises(ValueError, match="num_outputs=3; this model has num_outputs=4"):
        peft.load(mixed_model(4), path)
    with pytest.raises(ValueError, match="backbone='tiny'; this model has backbone='other'"):
        peft.load(mixed_model(3, backbone="other"), path)


def test_bad_paths(tmp_path):
    model = mixed_model()
    peft.apply(model, "bitfit")
    with pytest.raises(ValueError, match="must end in '.h5'"):
        peft.save(model, tmp_path / "a.keras")
    with pytest.raises(FileNotFoundError, match="No adapter file"):
        peft.load(mixed_model(), tmp_path / "missing.peft.weights.h5")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w"):
        pass
    with pytest.raises(ValueError, match="not a kerastl.peft adapter file"):
        peft.load(mixed_model(), other)
    with pytest.raises(ValueError, match="has no PEFT setting"):
        peft.save(mixed_model(), tmp_path / "b.h5")
