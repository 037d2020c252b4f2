"""Tests of kerastl/export/verify.py: metrics per task, with hand-computed values."""

import numpy as np
import pytest

from kerastl.export import verify


def test_multiclass_accuracy_agreement_and_difference():
    reference = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    outputs = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.5, 0.3, 0.2], [0.5, 0.4, 0.1]])
    labels = np.array([0, 1, 0, 2])
    got = verify.compare("multiclass", outputs, reference, labels)
    assert got["agreement"] == 0.75  # row 2 changed its top class
    assert got["accuracy"] == 0.75  # rows 0, 1, 2 right
    assert got["max_abs_diff"] == pytest.approx(0.2)
    one_hot = np.eye(3)[labels]
    assert verify.compare("multiclass", outputs, reference, one_hot)["accuracy"] == 0.75
    assert "accuracy" not in verify.compare("multiclass", outputs, reference)


def test_binary_and_multilabel_threshold_at_one_half():
    reference = np.array([[0.9], [0.4], [0.6]])
    outputs = np.array([[0.8], [0.55], [0.6]])
    got = verify.compare("binary", outputs, reference, np.array([1, 0, 0]))
    assert got["agreement"] == pytest.approx(2 / 3) and got["accuracy"] == pytest.approx(1 / 3)
    reference = np.array([[0.9, 0.1], [0.2, 0.7]])
    outputs = np.array([[0.9, 0.6], [0.2, 0.7]])
    got = verify.compare("multilabel", outputs, reference, np.array([[1, 0], [0, 0]]))
    assert got["agreement"] == 0.75 and got["accuracy"] == 0.5


def test_regression_reports_mae_and_no_agreement():
    reference = np.array([[1.0], [2.0]])
    outputs = np.array([[1.5], [2.0]])
    got = verify.compare("regression", outputs, reference, np.array([1.0, 3.0]))
    assert got == {"max_abs_diff": 0.5, "mae": pytest.approx(0.75)}


def test_check_images_prefers_eval_then_calibration_then_random():
    eval_images = np.zeros((3, 4, 4, 3), "float32")
    calibration = np.ones((100, 4, 4, 3), "float32")
    assert verify.check_images(eval_images, calibration, (4, 4, 3))[1] == "eval_data"
    images, source = verify.check_images(None, calibration, (4, 4, 3))
    assert source == "representative_data" and len(images) == 64
    images, source = verify.check_images(None, None, (4, 4, 3))
    assert source == "random" and images.shape == (16, 4, 4, 3)
    assert 0.0 <= images.min() and images.max() <= 255.0
