"""kerastl.fewshot.build and add_classes on a tiny kerastl model."""

import numpy as np
import pytest

import kerastl
import kerastl.fewshot as fs
from harness import separable_images, tiny_kerastl_model
from kerastl.fewshot.prototypes import class_prototypes


@pytest.fixture(scope="module")
def base():
    return tiny_kerastl_model(3)


@pytest.fixture(scope="module")
def data():
    return separable_images(48, 4, seed=1)


def _support(data, classes):
    x, y = data
    return {name: x[y == c] for name, c in classes.items()}


def _features(model, x):
    return kerastl.feature_extractor(model).predict(x, verbose=0)


def test_prototypes_are_the_class_means_of_the_features(base, data):
    model = fs.build(base, _support(data, {"a": 0, "b": 1, "c": 2}))
    x, y = data
    keep = y < 3
    expected = class_prototypes(_features(base, x[keep]), y[keep], 3)
    head = kerastl.get_head(model)
    np.testing.assert_allclose(head.prototypes, expected, rtol=1e-5, atol=1e-6)
    assert kerastl.model_info(model).class_names == ["a", "b", "c"]
    assert kerastl.get_backbone(model) is kerastl.get_backbone(base)  # shared, not copied
    pred = model.predict(x[keep], verbose=0).argmax(axis=1)
    assert pred.shape == (int(keep.sum()),)


def test_tuple_and_dataset_support_match_dict(base, data):
    x, y = data
    a = fs.build(base, (x, y), class_names=list("abcd"))
    ds = kerastl.data.from_arrays(x, y, class_names=list("abcd"), shuffle=False).train
    b = fs.build(base, ds)
    assert kerastl.model_info(b).class_names == list("abcd")
    np.testing.assert_allclose(kerastl.get_head(a).prototypes, kerastl.get_head(b).prototypes,
                               rtol=1e-5, atol=1e-6)


def test_add_classes_leaves_existing_outputs_unchanged(base, data):
    x, y = data
    model = fs.build(base, _support(data, {"a": 0, "b": 1, "c": 2}))
    before = model.predict(x, verbose=0)
    old = kerastl.get_head(model).prototypes
    grown = fs.add_classes(model, {"d": x[y == 3]})
    head = kerastl.get_head(grown)
    assert head.class_names == ["a", "b", "c", "d"]
    np.testing.assert_array_equal(head.prototypes[:3], old)
    after = grown.predict(x, verbose=0)
    # The old classes' scores are unchanged: renormalised over them, the outputs are too.
    np.testing.assert_allclose(after[:, :3] / after[:, :3].sum(1, keepdims=True), before,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(kerastl.get_head(model).prototypes, old)  # model untouched


def test_add_classes_from_embeddings(base, data):
    x, y = data
    model = fs.build(base, _support(data, {"a": 0, "b": 1}))
    emb = _features(base, x[y == 2])
    grown = fs.add_classes(model, {"c": emb})
    np.testing.assert_allclose(kerastl.get_head(grown).prototypes[2],
                               class_prototypes(emb, np.zeros(len(emb), int), 1)[0], rtol=1e-6)


def test_refinement_and_baseline_plus_plus_change_the_prototypes(base, data):
    x, y = data
    support = _support(data, {"a": 0, "b": 1, "c": 2, "d": 3})
    plain = kerastl.get_head(fs.build(base, support)).prototypes
    refined = kerastl.get_head(fs.build(base, support, refine_data=x[:20])).prototypes
    tuned = kerastl.get_head(fs.build(base, support, fine_tune_steps=5)).prototypes
    assert not np.allclose(plain, refined) and not np.allclose(plain, tuned)
    np.testing.assert_allclose(np.linalg.norm(tuned, axis=1), 1.0, rtol=1e-5)


def test_euclidean_metric(base, data):
    model = fs.build(base, _support(data, {"a": 0, "b": 1}), metric="euclidean")
    head = kerastl.get_head(model)
    assert head.metric == "euclidean" and head.scale == 1.0


def test_zero_shot_class_is_refused(base, data):
    x, y = data
    with pytest.raises(ValueError, match="`support_data` has no examples of class 'b'"):
        fs.build(base, {"a": x[y == 0], "b": x[:0]})
    with pytest.raises(ValueError, match="class 'c' \\(index 2\\)"):
        fs.build(base, (x[y != 2], y[y != 2]), class_names=list("abcd"))


def test_one_class_is_refused(base, data):
    x, y = data
    with pytest.raises(ValueError, match="at least 2 classes"):
        fs.build(base, {"a": x[y == 0]})


def test_duplicate_class_names_on_add_classes(base, data):
    x, y = data
    model = fs.build(base, _support(data, {"a": 0, "b": 1}))
    with pytest.raises(ValueError, match="`new_support` class names must be new.*'a' is already"):
        fs.add_classes(model, {"a": x[y == 2]})
    with pytest.raises(ValueError, match="'c' is given twice"):
        fs.add_classes(model, (x[y >= 2], y[y >= 2] - 2), class_names=["c", "c"])


def test_mismatched_embedding_width(base, data):
    x, y = data
    model = fs.build(base, _support(data, {"a": 0, "b": 1}))
    with pytest.raises(ValueError, match="`new_support` embeddings must have width 16"):
        fs.add_classes(model, {"c": np.ones((3, 7), "float32")})


def test_add_classes_needs_a_prototype_model(base, data):
    x, y = data
    with pytest.raises(TypeError, match="kerastl.extend"):
        fs.add_classes(base, {"d": x[y == 3]})


def test_bad_options(base, data):
    support = _support(data, {"a": 0, "b": 1})
    with pytest.raises(ValueError, match="`metric`"):
        fs.build(base, support, metric="dot")
    with pytest.raises(ValueError, match="`fine_tune_steps`.*metric='cosine'"):
        fs.build(base, support, metric="euclidean", fine_tune_steps=3)
    with pytest.raises(ValueError, match="`class_names` must be unique"):
        fs.build(base, support, class_names=["x", "x"])
    with pytest.raises(TypeError, match="`support_data`"):
        fs.build(base, None)


def test_kerastl_fit_trains_a_prototype_head_by_gradient(data):
    # The closed-form head is for Dense output layers: a prototype head trains by gradient.
    x, y = data
    keep = y < 3
    model = fs.build(tiny_kerastl_model(3), _support(data, {"a": 0, "b": 1, "c": 2}))
    report = kerastl.fit(model, (x[keep], y[keep]), recipe="feature_extraction", epochs=2,
                         verbose=0)
    assert report.stages[0].solver == "gradient"
    assert len(report.stages[0].history["loss"]) == 2
