"""kerastl.fit with the real MobileNetV2 ImageNet weights on real photos (honest protocol)."""

import numpy as np
import pytest

import kerastl
import kerastl.data
from kerastl.training import fit


def _arrays(dataset):
    xs, ys = zip(*[(np.asarray(x), np.asarray(y)) for x, y in dataset])
    return np.concatenate(xs), np.concatenate(ys)


@pytest.mark.integration
def test_auto_matches_the_linear_probe_on_a_test_split_nothing_was_chosen_on(assets, keras_home):
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    root = assets / "datasets" / "flowers_kaggle_227"
    # Every choice uses the train folder (80:20 train/validation); the val folder is the test.
    data = kerastl.data.from_directory(root / "train", image_size=128, validation_split=0.2,
                                       seed=0)
    test_x, test_y = _arrays(kerastl.data.from_directory(root / "val", image_size=128,
                                                         shuffle=False).train)
    model = kerastl.build("mobilenet_v2", data.num_classes, input_shape=128,
                          class_names=data.class_names)
    report = fit(model, data, seed=0, verbose=0)
    head = report.stages[0]
    assert report.recipe == "two_stage" and head.solver == "linear"
    assert head.selected_on.endswith("cross-validation on training + validation data")
    assert [s.cached for s in report.stages] == ["features", "prefix"]
    accuracy = float((model.predict(test_x, verbose=0).argmax(1) == test_y).mean())

    # The baseline: scikit-learn's logistic regression on the same frozen features,
    # C by cross-validation on the same labelled images (training + validation).
    extractor = kerastl.feature_extractor(kerastl.build("mobilenet_v2", data.num_classes,
                                                        input_shape=128))
    x, y = _arrays(data.train.concatenate(data.validation))
    probe = LogisticRegressionCV(Cs=np.logspace(-4, 4, 17), max_iter=5000,
                                 cv=StratifiedKFold(5, shuffle=True, random_state=0))
    features, test_features = extractor.predict(x, verbose=0), extractor.predict(test_x, verbose=0)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):  # small products: one thread is faster
        probe_accuracy = probe.fit(features, y).score(test_features, test_y)
    assert accuracy >= probe_accuracy - 0.01, (accuracy, probe_accuracy)
