import numpy as np

from kerastl.data.split import split_indices


def test_stratified_split_is_proportional_disjoint_and_complete():
    labels = np.array([0] * 10 + [1] * 20 + [2] * 30)
    train, val, test = split_indices(labels, len(labels), (0.2, 0.1), seed=3)
    assert np.bincount(labels[val]).tolist() == [2, 4, 6]
    assert np.bincount(labels[test]).tolist() == [1, 2, 3]
    assert np.bincount(labels[train]).tolist() == [7, 14, 21]
    everything = np.concatenate([train, val, test])
    assert sorted(everything.tolist()) == list(range(60))
    assert all((np.diff(p) > 0).all() for p in (train, val, test))


def test_same_seed_same_split_other_seed_other_split():
    labels = np.arange(100) % 4
    a = split_indices(labels, 100, (0.3,), seed=1)
    b = split_indices(labels, 100, (0.3,), seed=1)
    c = split_indices(labels, 100, (0.3,), seed=2)
    assert np.array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_small_classes_keep_one_example_for_training():
    labels = np.array([0, 1, 1, 2, 2, 2])
    train, val = split_indices(labels, 6, (0.9,), seed=0)
    # A single-image class stays in train; others give at least one to val, keep one.
    assert np.bincount(labels[train], minlength=3).tolist() == [1, 1, 1]
    assert np.bincount(labels[val], minlength=3).tolist() == [0, 1, 2]


def test_remainders_keep_the_total_fraction():
    labels = np.repeat(np.arange(4), 10)
    train, val = split_indices(labels, 40, (0.25,), seed=0)
    assert len(val) == 10
    assert sorted(np.bincount(labels[val]).tolist()) == [2, 2, 3, 3]


def test_unstratified_split():
    train, val = split_indices(None, 50, (0.2,), seed=0)
    assert len(val) == 10 and len(train) == 40
    assert not set(train) & set(val)
