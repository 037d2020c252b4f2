"""Tests of kerastl.distribute.get_strategy (kerastl/distribute/strategies.py).

The multi-device checks run tests/distribute/train_worker.py in fresh
processes: logical CPU devices and MultiWorkerMirroredStrategy must be set up
before TensorFlow starts, and the rest of the suite keeps its one device.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import kerastl.distribute as kd
from harness import MOBILENET_V2, assert_float32_close, float32_tolerance

WORKER = Path(__file__).with_name("train_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _failing_resolver(calls):
    def resolver(tpu):
        calls.append(tpu)
        raise ValueError(f"no TPU named {tpu!r} here")
    return resolver


class _UnreachableResolver(tf.distribute.cluster_resolver.ClusterResolver):
    """A resolver instance whose cluster cannot be reached."""

    def cluster_spec(self):
        raise ConnectionError("cluster unreachable")

    def master(self, task_type=None, task_id=None, rpc_layer=None):
        raise ConnectionError("master unreachable")


# --- get_strategy on this machine (no TPU, no GPU) --------------------------------------------

def test_auto_is_the_default_strategy_here_and_says_why(caplog):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with caplog.at_level(logging.INFO, logger="kerastl.distribute"):
        strategy = kd.get_strategy("auto")
    assert strategy is tf.distribute.get_strategy()
    assert kd.num_replicas(strategy) == 1
    assert "no TPU found" in caplog.text
    assert "using default strategy (1 replica)" in caplog.text


def test_auto_falls_back_with_a_warning_when_the_injected_resolver_fails():
    calls = []
    with pytest.warns(UserWarning, match=r"no TPU found \(ValueError: no TPU named 'my-tpu'"):
        strategy = kd.get_strategy("auto", tpu="my-tpu", resolver=_failing_resolver(calls))
    assert calls == ["my-tpu"]
    assert strategy is tf.distribute.get_strategy()


def test_auto_tries_local_tpu_when_tensorflow_lists_tpu_devices(monkeypatch):
    real = tf.config.list_physical_devices
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["TPU:0"] if kind == "TPU" else real(kind))
    calls = []
    with pytest.warns(UserWarning, match=r"no TPU named None"):  # the first error is reported
        kd.get_strategy("auto", resolver=_failing_resolver(calls))
    assert calls == [None, "local"]


def test_tpu_with_a_failing_resolver_raises_a_clear_error():
    calls = []
    with pytest.raises(RuntimeError, match=r"`kind='tpu'` needs a TPU but none could be reached "
                                           r"\(ValueError: no TPU named None here\)") as info:
        kd.get_strategy("tpu", resolver=_failing_resolver(calls))
    assert calls == [None]
    assert isinstance(info.value.__cause__, ValueError)
    assert "tpu='local'" in str(info.value)


def test_tpu_uses_a_resolver_instance_as_given():
    with pytest.raises(RuntimeError, match=r"ConnectionError: master unreachable"):
        kd.get_strategy("tpu", resolver=_UnreachableResolver())


def test_tpu_without_a_tpu_raises():
    with pytest.raises(RuntimeError, match=r"`kind='tpu'` needs a TPU"):
        kd.get_strategy("tpu")


def test_gpu_without_a_gpu_raises_a_clear_error():
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    with pytest.raises(RuntimeError, match=r"`kind='gpu'` needs a GPU but TensorFlow sees none\."):
        kd.get_strategy("gpu")


def test_cpu_and_mirrored_kinds():
    cpu = kd.get_strategy("cpu")
    assert isinstance(cpu, tf.distribute.OneDeviceStrategy)
    assert cpu.extended.worker_devices[0].endswith("CPU:0")
    if not tf.config.list_physical_devices("GPU"):
        mirrored = kd.get_strategy("mirrored")
        assert isinstance(mirrored, tf.distribute.MirroredStrategy)
        assert all("CPU" in d for d in mirrored.extended.worker_devices)


def test_a_strategy_passes_through():
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    assert kd.get_strategy(strategy) is strategy


def test_bad_kind_lists_the_valid_kinds():
    with pytest.raises(ValueError, match=r"`kind` must be one of 'auto', 'tpu', 'mirrored', "
                                         r"'multi_worker', 'gpu', 'cpu'\. Did you mean 'mirrored'"
                                         r".*Received: kind='mirored'"):
        kd.get_strategy("mirored")
    with pytest.raises(TypeError, match=r"`kind` must be a string or a tf.distribute.Strategy"):
        kd.get_strategy(2)


def test_tpu_options_are_refused_for_other_kinds():
    with pytest.raises(ValueError, match=r"only used with kind='auto' or kind='tpu'"):
        kd.get_strategy("cpu", tpu="local")


@pytest.mark.parametrize("tf_config, message", [
    (None, r"needs the TF_CONFIG environment variable"),
    ("{not json", r"TF_CONFIG is not valid JSON"),
    ('{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     r"'cluster' must map 'worker'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}',
     r"'task.type' must be one of the cluster's jobs \['worker'\]"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     r"'task.index' must be an integer between 0 and 1"),
])
def test_multi_worker_needs_a_valid_tf_config(monkeypatch, tf_config, message):
    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", tf_config)
    with pytest.raises(ValueError, match=message) as info:
        kd.get_strategy("multi_worker")
    assert "TF_CONFIG='{\"cluster\"" in str(info.value)  # shows a working example


# --- training under several replicas, in fresh processes -------------------------------------

def _load(path: Path) -> list[np.ndarray]:
    with np.load(path) as data:
        return [data[k] for k in data.files]


def _max_diff(a, b) -> float:
    assert len(a) == len(b)
    return max(float(np.abs(x - y).max()) for x, y in zip(a, b))


# Two replicas sum the gradients in another order than one device: float32
# differences grow through EPOCHS x 3 steps of SGD, each a forward, backward and
# update pass over the model's layers.
_STEPS = 2 * 3
TINY_TRAINING = {"depth": _STEPS * 3 * 6, "terms": 27}  # conv 3x3x3, BN, ReLU, head
MOBILENET_V2_TRAINING = {"depth": MOBILENET_V2["depth"] + _STEPS * 3 * 3,
                         "terms": MOBILENET_V2["terms"]}  # frozen features, head trained


def _assert_same_training(a, b, tolerance) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert_float32_close(x, y, **tolerance)


def _env(**extra) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", **extra)
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy"):
        env.pop(proxy, None)  # gRPC between the workers must stay on 127.0.0.1
    return env


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_matches_one_device(tmp_path):
    proc = subprocess.run([sys.executable, str(WORKER), "--mode", "mirrored", "--out", str(tmp_path)],
                          capture_output=True, text=True, env=_env(), timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    info = json.loads((tmp_path / "info.json").read_text())
    assert info["tiny_mirrored"]["strategy"] == "MirroredStrategy (2 replicas)"
    assert info["tiny_single"]["strategy"] == "default strategy (1 replica)"
    assert all(run["model_strategy_is_strategy"] for run in info.values())

    single = _load(tmp_path / "tiny_single.npz")
    # Training moved every weight far more than the tolerance used below.
    start = _load(tmp_path / "tiny_mirrored_initial.npz")
    assert min(float(np.abs(x - y).max()) for x, y in zip(single, start)) > 1e-2
    _assert_same_training(single, _load(tmp_path / "tiny_mirrored.npz"), TINY_TRAINING)
    assert_float32_close(info["tiny_mirrored"]["history"]["loss"],
                         info["tiny_single"]["history"]["loss"], **TINY_TRAINING)
    # Per-replica BatchNorm statistics (synchronization switched off after
    # build) give other weights: the synchronization is what makes them equal.
    nosync = _load(tmp_path / "tiny_nosync_mirrored.npz")
    assert _max_diff(single, nosync) > 100 * float32_tolerance(**TINY_TRAINING)

    # kerastl.build("mobilenet_v2", ..., strategy=) trains the same under both.
    mnv2 = _load(tmp_path / "mobilenet_v2_single.npz")
    assert _max_diff(mnv2, _load(tmp_path / "mobilenet_v2_mirrored_initial.npz")) > 1e-4
    _assert_same_training(mnv2, _load(tmp_path / "mobilenet_v2_mirrored.npz"),
                          MOBILENET_V2_TRAINING)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_all(procs, *, timeout: float) -> list:
    """Waits for all processes; stops early when one fails (the other would hang)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        codes = [proc.poll() for proc in procs]
        if all(code is not None for code in codes) or any(code for code in codes):
            return codes
        time.sleep(0.2)
    return [proc.poll() for proc in procs]


@pytest.mark.slow
def test_multi_worker_two_processes_end_with_identical_weights(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{_free_port()}" for _ in range(2)]}
    procs, logs = [], []
    try:
        for index in range(2):
            tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            log = open(tmp_path / f"worker{index}.log", "w")  # noqa: SIM115 (closed below)
            logs.append(log)
            procs.append(subprocess.Popen(
                [sys.executable, str(WORKER), "--mode", "multi_worker", "--out", str(tmp_path)],
                stdout=log, stderr=subprocess.STDOUT, env=_env(TF_CONFIG=tf_config), cwd=REPO))
        codes = _wait_all(procs, timeout=180)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        for log in logs:
            log.close()
    output = "\n".join((tmp_path / f"worker{i}.log").read_text()[-4000:] for i in range(2))
    assert codes == [0, 0], output

    infos = [json.loads((tmp_path / f"info_worker{i}.json").read_text()) for i in range(2)]
    for i, info in enumerate(infos):
        run = info[f"tiny_worker{i}"]
        assert run["strategy"] == "MultiWorkerMirroredStrategy (2 replicas)"
        assert run["shard_policy"] == "DATA"  # prepare_dataset splits in-memory data by example
    worker0, worker1 = (_load(tmp_path / f"tiny_worker{i}.npz") for i in range(2))
    start = _load(tmp_path / "tiny_worker0_initial.npz")
    assert min(float(np.abs(x - y).max()) for x, y in zip(worker0, start)) > 1e-2
    assert _max_diff(worker0, worker1) == 0.0
    assert infos[0]["tiny_worker0"]["history"] == infos[1]["tiny_worker1"]["history"]
    # Each worker saw half of every global batch: the result is one-device training.
    _assert_same_training(worker0, _load(tmp_path / "tiny_single.npz"), TINY_TRAINING)
