"""A distill run killed with SIGKILL resumes and ends with an uninterrupted run's weights."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from harness import REPO

CHILD = """
import os, sys, time
sys.path.insert(0, {tests!r})
import keras, numpy as np
from harness import separable_images, tiny_kerastl_model, train_tiny_model
from kerastl.distillation import distill

class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("KERASTL_TEST_SLEEP", "0")))

x, y = separable_images(24, 3, 20, seed=0)
xv, yv = separable_images(12, 3, 20, seed=1, mislabeled=4)  # the distillation stage runs
teacher = train_tiny_model(tiny_kerastl_model(3, size=20, seed=3), x, y, epochs=2)
student = tiny_kerastl_model(3, size=16, seed=4)
report = distill(teacher, student, (x, y), (xv, yv), views=3, fine_tune_epochs=4,
                 trainable_blocks=2, batch_size=8, checkpoint_dir={ckpt!r}, callbacks=[Slow()],
                 early_stopping=False, seed=0, verbose=0)
np.savez({out!r}, *student.get_weights())
print("REPORT" + report.to_json())
"""


def _start(tmp_path, name, ckpt, sleep):
    code = CHILD.format(tests=str(REPO / "tests"), ckpt=None if ckpt is None else str(ckpt),
                        out=str(tmp_path / f"{name}.npz"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERASTL_TEST_SLEEP=str(sleep))
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _weights(path):
    with np.load(path) as saved:
        return [saved[f"arr_{i}"] for i in range(len(saved.files))]


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(tmp_path):
    ckpt = tmp_path / "ckpt"
    marker = ckpt / "stage_1" / "backup" / "training_metadata.json"
    reference = _start(tmp_path, "reference", None, 0.0)  # uninterrupted, no checkpoint
    # 1 s at the end of every distillation epoch: the kill (polled every 0.1 s) lands while
    # at least 3 of the 4 epochs are left.
    child = _start(tmp_path, "killed", ckpt, 1.0)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.poll() is None, child.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no backup after the first fine-tune epoch"
            time.sleep(0.1)
        child.kill()  # SIGKILL while the next epoch runs (or sleeps)
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -9
    assert json.loads(marker.read_text())["epoch"] >= 0
    assert (ckpt / "stage_0" / "done.json").exists()
    assert list((ckpt / "teacher").glob("teacher_*.npz"))

    again = _start(tmp_path, "resumed", ckpt, 0.0)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    report = json.loads(out.split("REPORT", 1)[1])
    assert report["teacher_seconds"] == 0.0  # the teacher's outputs were read back
    fit, tune = report["stages"]
    assert fit["name"] == "fit" and tune["cached"] == "prefix"  # the cached distillation stage
    assert tune["resumed"] and tune["epochs_run"] == 4
    ref_out, ref_err = reference.communicate(timeout=300)
    assert reference.returncode == 0, ref_err[-3000:]
    resumed, expected = _weights(tmp_path / "resumed.npz"), _weights(tmp_path / "reference.npz")
    assert len(resumed) == len(expected)
    for a, b in zip(resumed, expected):
        np.testing.assert_array_equal(a, b)
