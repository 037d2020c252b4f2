"""`kerastl.weights.add`: one weight file under every name Keras asks for, offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import kerastl.weights as weights

V2_224 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


def _h5(path, payload=b"weights"):
    path.write_bytes(weights.HDF5_SIGNATURE + payload)
    return path


def test_keras_names_cover_every_input_size_keras_asks_for():
    names = weights.keras_names(V2_224)
    assert names == [V2_224.replace("_224_", f"_{s}_") for s in (96, 128, 160, 192, 224)]
    assert weights.keras_names("mobilenet_2_5_160_tf_no_top.h5") == [
        f"mobilenet_2_5_{s}_tf_no_top.h5" for s in (128, 160, 192, 224)]
    assert weights.keras_names("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96.h5")[-1] \
        == "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224.h5"
    assert weights.keras_names("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") == [
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"]


def test_add_links_every_name_and_is_idempotent(tmp_path):
    source = _h5(tmp_path / V2_224)
    home = tmp_path / "kh"
    placed = weights.add(source, keras_home_dir=home)
    assert [p.action for p in placed] == ["linked"] * 5
    for p in placed:
        assert p.path.parent == home / "models" and p.path.is_symlink()
        assert p.path.read_bytes() == source.read_bytes()
    again = weights.add(source, keras_home_dir=home)
    assert [p.action for p in again] == ["kept"] * 5
    assert [p.name for p in weights.cached(home)] == sorted(p.path.name for p in placed)


def test_copy_makes_the_cache_stand_alone(tmp_path):
    (tmp_path / "src").mkdir()
    source = _h5(tmp_path / "src" / "mobilenet_2_5_224_tf_no_top.h5")
    placed = weights.add(tmp_path / "src", keras_home_dir=tmp_path / "kh", copy=True)
    assert sorted(p.action for p in placed) == ["copied", "linked", "linked", "linked"]
    source.unlink()
    for p in placed:
        assert p.path.read_bytes().startswith(weights.HDF5_SIGNATURE)


def test_add_refuses_other_files_and_non_hdf5(tmp_path):
    home = tmp_path / "kh"
    (home / "models").mkdir(parents=True)
    (home / "models" / V2_224).write_bytes(b"other")
    source = _h5(tmp_path / V2_224)
    with pytest.raises(FileExistsError, match="overwrite"):
        weights.add(source, keras_home_dir=home)
    assert weights.add(source, keras_home_dir=home, overwrite=True)[-1].action == "linked"
    (tmp_path / "fake.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="not an HDF5"):
        weights.add(tmp_path / "fake.h5", keras_home_dir=home)
    with pytest.raises(FileNotFoundError, match="Received: source="):
        weights.add(tmp_path / "missing.h5", keras_home_dir=home)


def test_keras_home_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert weights.keras_home() == tmp_path / "kh"
    monkeypatch.delenv("KERAS_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert weights.keras_home() == tmp_path / ".keras"


@pytest.mark.integration
def test_keras_loads_imagenet_weights_offline_after_weights_add(assets, tmp_path):
    """`kerastl weights add` then weights="imagenet" in a fresh process with an empty cache."""
    home = tmp_path / "kh"
    cli = [sys.executable, "-m", "kerastl.cli"]
    env = {**os.environ, "KERAS_HOME": str(home), "HOME": str(tmp_path)}
    added = subprocess.run([*cli, "weights", "add", str(assets / "weights"), "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
    assert added.returncode == 0, added.stderr
    assert len(json.loads(added.stdout)["placed"]) == 9  # 5 MobileNetV2 + 4 MobileNet names
    file = assets / "weights" / V2_224
    code = ("import keras, numpy as np\n"
            "m = keras.applications.MobileNetV2(include_top=False, weights='imagenet', "
            "input_shape=(96, 96, 3))\n"
            f"r = keras.applications.MobileNetV2(include_top=False, weights={str(file)!r}, "
            "input_shape=(96, 96, 3))\n"
            "print(all(np.array_equal(a, b) for a, b in zip(m.get_weights(), r.get_weights())))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "True"
