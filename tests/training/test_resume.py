"""A kerastl.fit run killed with SIGKILL resumes from its checkpoint_dir and finishes."""

import json
import os
import subprocess
import sys
import time

from harness import REPO

CHILD = """
import os, sys, time
sys.path.insert(0, {tests!r})
import keras
from harness import separable_images, tiny_kerastl_model
from kerastl.training import fit

class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("KERASTL_TEST_SLEEP", "0")))

x, y = separable_images(48, 3, seed=0)
xv, yv = separable_images(24, 3, seed=1, mislabeled=4)
report = fit(tiny_kerastl_model(3), (x, y), (xv, yv), recipe="two_stage", epochs=2,
             fine_tune_epochs=4, trainable_blocks=2, checkpoint_dir={ckpt!r},
             callbacks=[Slow()], early_stopping=False, seed=0, verbose=0)
print("REPORT" + report.to_json())
"""


def _start(code, sleep):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERASTL_TEST_SLEEP=str(sleep))
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_killed_run_resumes_and_finishes(tmp_path):
    ckpt = tmp_path / "ckpt"
    code = CHILD.format(tests=str(REPO / "tests"), ckpt=str(ckpt))
    marker = ckpt / "stage_1" / "backup" / "training_metadata.json"
    child = _start(code, sleep=2.0)
    try:
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert child.poll() is None, child.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "no backup after the first fine-tune epoch"
            time.sleep(0.2)
        child.kill()  # SIGKILL in the middle of the second fine-tune epoch
        child.wait(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == -9
    assert json.loads(marker.read_text())["epoch"] >= 1
    assert (ckpt / "stage_0" / "done.json").exists()

    again = _start(code, sleep=0.0)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err[-3000:]
    report = json.loads(out.split("REPORT", 1)[1])
    head, tune = report["stages"]
    # The finished head stage is read back from its checkpoint, not run again.
    done = json.loads((ckpt / "stage_0" / "done.json").read_text())
    assert not head["resumed"] and head["epochs_run"] == done["epochs_run"]
    assert tune["resumed"] and tune["epochs_run"] == 4
    assert len(tune["history"]["loss"]) == 4
    assert not (ckpt / "stage_1" / "backup").exists()
    assert (ckpt / "stage_1" / "done.json").exists()
