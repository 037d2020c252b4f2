"""`kerastl.fit` with data that does not fit the model or the checkpoint.

Issue 14, items 3 (resume with other data), 5 (labels out of range) and 12
(``fit(model, None)``, 64-px images on a 32-px model, a `checkpoint_dir`
that is a file).
"""

import numpy as np
import pytest
import tensorflow as tf
from harness import make_image_folder, separable_images, tiny_kerastl_model

import kerastl
from kerastl.training.checkpoint import data_fingerprint
from kerastl.training.inputs import as_data, check_inputs

pytestmark = pytest.mark.timeout(600)

SIZE = 16
FIT = dict(recipe="feature_extraction", epochs=1, verbose=0, seed=0)


def _arrays(n=12, classes=2, seed=0, size=SIZE):
    return separable_images(n, classes, size, seed=seed)


def test_resume_with_other_arrays_is_refused(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    first = kerastl.fit(tiny_kerastl_model(2, size=SIZE), _arrays(seed=0), checkpoint_dir=ckpt,
                        **FIT)
    again = kerastl.fit(tiny_kerastl_model(2, size=SIZE), _arrays(seed=0), checkpoint_dir=ckpt,
                        **FIT)
    assert again.stages[0].epochs == first.stages[0].epochs  # same data: resumes
    with pytest.raises(ValueError, match="holds a run on other data.*train: digest differ"):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), _arrays(seed=1), checkpoint_dir=ckpt,
                    **FIT)
    with pytest.raises(ValueError, match="validation: kind, num_examples, spec, digest differ"):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), _arrays(seed=0), _arrays(4, seed=2),
                    checkpoint_dir=ckpt, **FIT)


def test_fingerprint_of_image_folders_sees_changed_files(tmp_path):
    folder = make_image_folder(tmp_path / "ds", per_class=3, size=20)

    def fingerprint():
        data = kerastl.data.from_directory(folder, image_size=SIZE, batch_size=4)
        return data_fingerprint(as_data("train", data.train, batch_size=4, shuffle=True,
                                        seed=0))

    before = fingerprint()
    assert before["kind"] == "files" and before == fingerprint()
    victim = sorted((folder / "a").iterdir())[0]
    victim.write_bytes(sorted((folder / "b").iterdir())[0].read_bytes())
    assert fingerprint()["digest"] != before["digest"]


def test_fingerprint_of_unseeded_shuffled_file_lists_is_stable(tmp_path):
    import keras

    folder = make_image_folder(tmp_path / "ds", per_class=4, size=20)

    def fingerprint():
        ds = keras.utils.image_dataset_from_directory(folder, image_size=(SIZE, SIZE),
                                                      batch_size=4, shuffle=True, seed=None,
                                                      verbose=False)
        return data_fingerprint(as_data("train", ds, batch_size=4, shuffle=False, seed=None))

    assert fingerprint()["kind"] == "files" and fingerprint() == fingerprint()


def test_fingerprint_of_a_reshuffled_dataset_ignores_the_order_only():
    x, y = _arrays(20)

    def dataset(images, seed):
        ds = tf.data.Dataset.from_tensor_slices((images, y))
        return ds.shuffle(20, seed=seed, reshuffle_each_iteration=True).batch(8)

    def fingerprint(ds):
        return data_fingerprint(as_data("train", ds, batch_size=8, shuffle=False, seed=None))

    assert fingerprint(dataset(x, 1)) == fingerprint(dataset(x, 2))
    other = x.copy()
    other[3, 0, 0, 0] += 1.0
    assert fingerprint(dataset(other, 1)) != fingerprint(dataset(x, 1))


def test_checkpoint_dir_that_is_a_file(tmp_path):
    file = tmp_path / "ckpt"
    file.write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="Received: checkpoint_dir="):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), _arrays(), checkpoint_dir=str(file), **FIT)
    assert file.read_text() == "not a folder"


def test_fit_without_training_data():
    with pytest.raises(TypeError, match="Received: train=None"):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), None, **FIT)


@pytest.mark.parametrize("labels", [[0, 1, 7, 0], [0, -1, 1, 0]])
def test_labels_out_of_range_are_refused(labels):
    x, _ = _arrays(4)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="class indices"):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), (x, np.array(labels)), **FIT)


@pytest.mark.parametrize("head_solver", ["linear", "gradient"])
def test_labels_out_of_range_after_the_first_batches_are_refused(head_solver):
    x, y = _arrays(40)
    y = y.copy()
    y[-1] = 5  # in the last batch: past what the cheap upfront check reads
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(4)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError),
                       match=r"class indices.*\[0, 2\)"):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), ds, head_solver=head_solver, **FIT)


def test_check_inputs_names_class_count_image_size_and_labels(tmp_path):
    folder = make_image_folder(tmp_path / "ds", classes=("a", "b", "c"), per_class=2, size=20)
    data = kerastl.data.from_directory(folder, image_size=SIZE, batch_size=4)
    common = dict(input_shape=(None, SIZE, SIZE, 3), task="multiclass")
    three = as_data("train", data.train, batch_size=4, shuffle=False, seed=None)
    with pytest.raises(ValueError, match="has 3 classes .* the model has 2"):
        check_inputs(three, name="train", num_outputs=2, **common)
    check_inputs(three, name="train", num_outputs=3, **common)
    big = as_data("train", _arrays(size=2 * SIZE), batch_size=4, shuffle=False, seed=None)
    with pytest.raises(ValueError, match=r"input shape \(16, 16, 3\).*Received: train images "
                                         r"of shape \(32, 32, 3\)"):
        check_inputs(big, name="train", num_outputs=2, **common)
    x, _ = _arrays(4)
    bad = as_data("validation_data", (x, np.array([0, 1, 2, 1])), batch_size=4, shuffle=False,
                  seed=None)
    with pytest.raises(ValueError, match="`validation_data` labels .* from 0 to 2"):
        check_inputs(bad, name="validation_data", num_outputs=2, **common)
    with pytest.raises(ValueError, match="1 column"):
        check_inputs(bad, name="validation_data", input_shape=(None, SIZE, SIZE, 3),
                     task="multilabel", num_outputs=2)


def test_fit_with_images_of_another_size():
    with pytest.raises(ValueError, match=r"input shape \(16, 16, 3\)"):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), _arrays(size=2 * SIZE), **FIT)


def test_fit_on_more_classes_than_the_model_has(tmp_path):
    folder = make_image_folder(tmp_path / "ds", classes=("a", "b", "c"), per_class=2, size=20)
    data = kerastl.data.from_directory(folder, image_size=SIZE, batch_size=4)
    with pytest.raises(ValueError, match="has 3 classes"):
        kerastl.fit(tiny_kerastl_model(2, size=SIZE), data, **FIT)
