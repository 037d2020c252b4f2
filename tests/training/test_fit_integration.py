"""kerastl.fit with the real MobileNetV2 ImageNet weights on real photos (honest protocol)."""

import numpy as np
import pytest

import kerastl
import kerastl.data
from kerastl.training import fit

PER_CLASS, VALIDATION_PER_CLASS, SIZE = 40, 10, 128


def _arrays(dataset):
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


def _subset(labels, seed):
    """(train, validation) indices: PER_CLASS + VALIDATION_PER_CLASS images of every class."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        validation.append(members[:VALIDATION_PER_CLASS])
        train.append(members[VALIDATION_PER_CLASS:VALIDATION_PER_CLASS + PER_CLASS])
    return np.concatenate(train), np.concatenate(validation)


@pytest.mark.integration
def test_auto_matches_the_linear_probe_on_a_test_split_nothing_was_chosen_on(assets, keras_home):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold
    from threadpoolctl import threadpool_limits

    root = assets / "datasets" / "flowers_kaggle_227"
    # Every choice uses images of the train folder; the val folder is the test split.
    x, y = _arrays(kerastl.data.from_directory(root / "train", image_size=SIZE,
                                               shuffle=False).train)
    tr, va = _subset(y, seed=0)
    test_x, test_y = _arrays(kerastl.data.from_directory(root / "val", image_size=SIZE,
                                                         shuffle=False).train)
    model = kerastl.build("mobilenet_v2", 5, input_shape=SIZE)
    report = fit(model, (x[tr], y[tr]), (x[va], y[va]), seed=0, verbose=0)
    head = report.stages[0]
    assert report.recipe == "two_stage" and head.solver == "linear"
    assert head.selected_on.endswith("cross-validation on training + validation data")
    assert [s.cached for s in report.stages] == ["features", "prefix"]
    accuracy = float((model.predict(test_x, verbose=0).argmax(1) == test_y).mean())

    # The baseline: scikit-learn's logistic regression on the same frozen features,
    # C by cross-validation on the same labelled images (training + validation).
    extractor = kerastl.feature_extractor(kerastl.build("mobilenet_v2", 5, input_shape=SIZE))
    both = np.concatenate([tr, va])
    features = extractor.predict(x[both], verbose=0)
    test_features = extractor.predict(test_x, verbose=0)
    probe = LogisticRegressionCV(Cs=np.logspace(-4, 4, 17), max_iter=5000,
                                 cv=StratifiedKFold(5, shuffle=True, random_state=0))
    with threadpool_limits(limits=1, user_api="blas"):  # small products: one thread is faster
        probe_accuracy = probe.fit(features, y[both]).score(test_features, test_y)
    # One test image is 0.5 points: within two of them is the tie.
    assert accuracy >= probe_accuracy - 0.01, (accuracy, probe_accuracy)
