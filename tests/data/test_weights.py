import numpy as np
import pytest

import kerastl.data


def test_balanced_matches_sklearn_formula():
    labels = np.array([0] * 10 + [1] * 30 + [2] * 60)
    weights = kerastl.data.compute_class_weight(labels)
    # n_samples / (n_classes * count)
    assert weights == pytest.approx({0: 100 / 30, 1: 100 / 90, 2: 100 / 180})
    # Weighted counts are equal for every class.
    counts = np.bincount(labels)
    assert np.allclose([weights[c] * counts[c] for c in range(3)], 100 / 3)


def test_counts_dict_by_index_and_by_name():
    by_index = kerastl.data.compute_class_weight({0: 10, 1: 30})
    by_name = kerastl.data.compute_class_weight({"cat": 10, "dog": 30})
    assert by_index == by_name == pytest.approx({0: 2.0, 1: 40 / 60})


def test_sqrt_mode_is_square_root_of_balanced():
    balanced = kerastl.data.compute_class_weight([0, 0, 0, 1], mode="balanced")
    sqrt = kerastl.data.compute_class_weight([0, 0, 0, 1], mode="sqrt")
    assert sqrt == pytest.approx({k: v ** 0.5 for k, v in balanced.items()})


def test_zero_count_classes_are_left_out():
    weights = kerastl.data.compute_class_weight({0: 5, 1: 0, 2: 15})
    assert set(weights) == {0, 2}
    assert weights[0] == pytest.approx(20 / 10)


def test_missing_label_values_are_absent():
    weights = kerastl.data.compute_class_weight(np.array([0, 0, 3, 3, 3, 3]))
    assert set(weights) == {0, 3}
    assert weights[0] == pytest.approx(1.5)


@pytest.mark.parametrize("bad", [np.zeros((3, 2), int), [], [0.5, 1.0], [-1, 0]])
def test_invalid_labels(bad):
    with pytest.raises(ValueError, match="labels"):
        kerastl.data.compute_class_weight(bad)


def test_invalid_mode_and_counts():
    with pytest.raises(ValueError, match="`mode` must be one of 'balanced', 'sqrt'.*"
                                         "Received: mode='balance'"):
        kerastl.data.compute_class_weight([0, 1], mode="balance")
    with pytest.raises(ValueError, match="every class count is 0"):
        kerastl.data.compute_class_weight({0: 0, 1: 0})
    with pytest.raises(ValueError, match=">= 0"):
        kerastl.data.compute_class_weight({0: -1, 1: 3})
