"""Evaluation metrics: checked against values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from kerastl.report.metrics import (as_class_indices, classification_metrics, confusion_matrix,
                                    format_metrics, multilabel_metrics, regression_metrics)


def test_confusion_matrix_rows_true_columns_predicted():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_classification_metrics_by_hand():
    y_true = [0, 0, 1, 2, 2, 2]
    y_pred = [0, 1, 1, 2, 0, 2]
    m = classification_metrics(y_true, y_pred, class_names=["cat", "dog", "fox"])
    assert m["accuracy"] == pytest.approx(4 / 6)
    cat, dog, fox = (m["per_class"][n] for n in ("cat", "dog", "fox"))
    assert (cat["precision"], cat["recall"]) == (pytest.approx(0.5), pytest.approx(0.5))
    assert (dog["precision"], dog["recall"]) == (pytest.approx(0.5), pytest.approx(1.0))
    assert (fox["precision"], fox["recall"]) == (pytest.approx(1.0), pytest.approx(2 / 3))
    assert fox["f1"] == pytest.approx(2 * 1.0 * (2 / 3) / (1.0 + 2 / 3))
    assert [cat["support"], dog["support"], fox["support"]] == [2, 1, 3]
    assert m["macro_recall"] == pytest.approx((0.5 + 1.0 + 2 / 3) / 3)
    assert m["weighted_recall"] == pytest.approx((2 * 0.5 + 1.0 + 3 * 2 / 3) / 6)
    assert m["confusion_matrix"] == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    assert "fox" in format_metrics(m)


def test_scores_are_argmaxed_and_binary_probabilities_thresholded():
    scores = np.array([[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]])
    assert as_class_indices(scores).tolist() == [1, 0]
    m = classification_metrics([1, 0, 1], np.array([[0.9], [0.2], [0.4]]), task="binary")
    assert m["accuracy"] == pytest.approx(2 / 3) and m["class_names"] == ["0", "1"]


def test_class_with_no_predictions_has_zero_precision_not_nan():
    m = classification_metrics([0, 1], [0, 0], class_names=["a", "b"])
    assert m["per_class"]["b"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}


def test_errors():
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(ValueError, match="fractional"):
        as_class_indices([0.2, 0.7])
    with pytest.raises(ValueError, match="task"):
        classification_metrics([0], [0], task="regression")


def test_multilabel_and_regression_metrics():
    m = multilabel_metrics([[1, 0], [1, 1]], [[0.9, 0.1], [0.8, 0.3]], class_names=["x", "y"])
    assert m["accuracy"] == pytest.approx(0.5)
    assert m["per_class"]["y"]["recall"] == 0.0 and m["per_class"]["x"]["precision"] == 1.0
    r = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.5, 2.0])
    assert r["mae"] == pytest.approx(0.5)
    assert r["rmse"] == pytest.approx(np.sqrt((0.25 + 1.0) / 3))
    assert r["r2"] == pytest.approx(1 - 1.25 / 2.0)
    assert "mae" in format_metrics(r)
