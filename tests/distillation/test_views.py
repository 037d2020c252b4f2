"""Fixed views: reproducible boxes, view 0 the image itself, flips and crops rendered."""

import numpy as np
import tensorflow as tf
from harness import separable_images

from kerastl.distillation.views import UNLABELED, collect, render, view_boxes


def test_boxes_are_fixed_by_the_seed_and_view_0_is_the_image():
    a = view_boxes(range(20), 4, augment="crop_flip", seed=7)
    np.testing.assert_array_equal(a, view_boxes(range(20), 4, augment="crop_flip", seed=7))
    assert not np.array_equal(a, view_boxes(range(20), 4, augment="crop_flip", seed=8))
    np.testing.assert_array_equal(a[:, 0], np.tile([0, 0, 1, 1, 0], (20, 1)))
    crops = a[:, 1:]
    area = crops[..., 2] * crops[..., 3]
    assert area.min() >= 0.25 * 0.74 and area.max() <= 1.0 + 1e-6
    assert (crops[..., 0] + crops[..., 2]).max() <= 1.0 + 1e-6
    assert 0 < crops[..., 4].mean() < 1
    flips = view_boxes(range(20), 3, augment="flip", seed=0)
    np.testing.assert_array_equal(flips[..., 2:4], 1.0)
    assert np.all(view_boxes(range(5), 3, augment="none", seed=0)[..., 4] == 0)
    # More views of an image keep its first ones (their teacher outputs are reused).
    np.testing.assert_array_equal(view_boxes(range(20), 7, augment="crop_flip", seed=7)[:, :4], a)
    # An image's views depend on its key, not on its position.
    np.testing.assert_array_equal(view_boxes([3, 9], 4, augment="crop_flip", seed=7)[1],
                                  a[9])


def test_render_crops_flips_and_resizes():
    image = np.arange(8 * 8 * 3, dtype="uint8").reshape(8, 8, 3)
    full = render(tf.constant(image), tf.constant([0, 0, 1, 1, 0], tf.float32), (8, 8)).numpy()
    np.testing.assert_allclose(full, image, atol=1e-3)
    flipped = render(tf.constant(image), tf.constant([0, 0, 1, 1, 1], tf.float32), (8, 8))
    np.testing.assert_allclose(flipped.numpy(), image[:, ::-1], atol=1e-3)
    crop = render(tf.constant(image), tf.constant([0.5, 0.25, 0.5, 0.5, 0], tf.float32), (4, 4))
    np.testing.assert_allclose(crop.numpy(), image[4:8, 2:6], atol=1e-3)
    assert render(tf.constant(image), tf.constant([0, 0, 1, 1, 0], tf.float32),
                  (3, 5)).shape == (3, 5, 3)


def test_collect_orders_examples_independently_of_the_loader(tmp_path):
    x, y = separable_images(9, 3, 12)
    order = np.random.default_rng(0).permutation(9)
    a = collect("train", (x, y), labeled=True)
    b = collect("train", tf.data.Dataset.from_tensor_slices((x[order], y[order])).batch(4),
                labeled=True)
    np.testing.assert_array_equal(a.pixels, b.pixels)
    assert a.digest() == b.digest() and a.num_labeled == 9
    u = collect("unlabeled", x, labeled=False)
    assert np.all(u.labels == UNLABELED) and u.num_labeled == 0
    from PIL import Image

    for i in range(3):
        Image.fromarray(x[i].astype("uint8")).save(tmp_path / f"{i}.png")
    folder = collect("unlabeled", str(tmp_path), labeled=False, image_size=(10, 10))
    assert folder.pixels.shape == (3, 10, 10, 3)
