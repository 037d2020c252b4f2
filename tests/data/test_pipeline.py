import numpy as np
import tensorflow as tf
from PIL import Image

from kerastl.data import decode, pipeline


def _elements(n):
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    return tf.data.Dataset.from_tensor_slices((images, np.arange(n, dtype=np.int64)))


def test_batch_and_prefetch_float_batches_and_fixed_order():
    ds = pipeline.batch_and_prefetch(_elements(10), num_examples=10, batch_size=4,
                                     shuffle=False, seed=None, cache=True)
    batches = list(ds)
    assert [int(x.shape[0]) for x, _ in batches] == [4, 4, 2]
    assert batches[0][0].dtype == tf.float32 and batches[0][1].dtype == tf.int64
    labels = np.concatenate([y.numpy() for _, y in ds])
    assert labels.tolist() == list(range(10))


def test_shuffle_after_cache_is_seeded_per_epoch():
    make = lambda: pipeline.batch_and_prefetch(_elements(30), num_examples=30, batch_size=30,
                                               shuffle=True, seed=4, cache=True)
    a, b = make(), make()
    first = next(iter(a))[1].numpy()
    assert first.tolist() == next(iter(b))[1].numpy().tolist()
    assert next(iter(a))[1].numpy().tolist() != first.tolist()
    assert sorted(first.tolist()) == list(range(30))


def test_file_dataset_drops_files_that_fail_to_decode(tmp_path):
    Image.new("RGB", (4, 4), (1, 2, 3)).save(tmp_path / "ok.png")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    ds = pipeline.file_dataset([str(tmp_path / "bad.png"), str(tmp_path / "ok.png")],
                               [decode.TF, decode.TF], np.array([0, 1]), image_size=(4, 4),
                               batch_size=8, shuffle=False, seed=None, cache=True,
                               drop_unreadable=True)
    images, labels = next(iter(ds))
    assert labels.numpy().tolist() == [1]
    assert (images.numpy() == [1, 2, 3]).all()


def test_file_dataset_knows_its_number_of_batches(tmp_path):
    for i in range(5):
        Image.new("RGB", (4, 4), (i, 0, 0)).save(tmp_path / f"{i}.png")
    paths = sorted(str(p) for p in tmp_path.iterdir())
    for shuffle, cache in ((True, True), (True, False), (False, str(tmp_path / "c"))):
        ds = pipeline.file_dataset(paths, [decode.TF] * 5, np.arange(5), image_size=(4, 4),
                                   batch_size=2, shuffle=shuffle, seed=0, cache=cache)
        assert int(ds.cardinality()) == 3
    assert int(pipeline.array_dataset(np.zeros((5, 2, 2, 3)), np.arange(5), batch_size=2,
                                      shuffle=True, seed=0).cardinality()) == 3


def test_attach_and_cache_for():
    ds = pipeline.attach(_elements(2), ["a", "b"], ["x.jpg", "y.jpg"])
    assert ds.class_names == ["a", "b"] and ds.file_paths == ["x.jpg", "y.jpg"]
    assert pipeline.attach(None, ["a"]) is None
    assert pipeline.cache_for("/tmp/c", "train") == "/tmp/c.train"
    assert pipeline.cache_for(True, "train") is True
