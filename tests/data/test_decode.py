import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from kerastl.data import decode


@pytest.mark.parametrize("mode, value, expected", [
    ("I;16", 257 * 200, 200), ("I", 65535, 255), ("I", -5, 0), ("F", 12.4, 12), ("L", 9, 9),
    ("1", 1, 255),
])
def test_pil_to_rgb_single_channel_modes(mode, value, expected):
    image = Image.new(mode, (3, 2), value)
    rgb = decode.pil_to_rgb(image)
    assert rgb.shape == (2, 3, 3) and rgb.dtype == np.uint8
    assert (rgb == expected).all()


def test_pil_to_rgb_palette_alpha_and_animation(tmp_path):
    assert (decode.pil_to_rgb(Image.new("LA", (2, 2), (50, 0))) == 50).all()
    assert (decode.pil_to_rgb(Image.new("RGBA", (2, 2), (1, 2, 3, 0))) == [1, 2, 3]).all()
    frames = [Image.new("RGB", (4, 4), c) for c in ((0, 255, 0), (255, 0, 0))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    with Image.open(tmp_path / "a.gif") as gif:
        gif.seek(1)
        assert (decode.pil_to_rgb(gif) == [0, 255, 0]).all()


def test_decode_switches_between_decoders(tmp_path):
    Image.new("RGB", (6, 4), (7, 8, 9)).save(tmp_path / "a.png")
    # (0, 51, 102) is in Pillow's web palette, so the palette image keeps it exactly.
    Image.new("RGB", (6, 4), (0, 51, 102)).convert("P").save(tmp_path / "a.bmp")
    png = tf.io.read_file(str(tmp_path / "a.png"))
    bmp = tf.io.read_file(str(tmp_path / "a.bmp"))
    used = (decode.TF, decode.PIL)
    assert (decode.decode(png, tf.constant(0), used).numpy() == [7, 8, 9]).all()
    assert (decode.decode(bmp, tf.constant(1), used).numpy() == [0, 51, 102]).all()
    assert decode.decode(png, tf.constant(0), (decode.TF,)).shape == (4, 6, 3)


def test_resize_uint8_keeps_images_of_the_right_size():
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (5, 7, 3)), tf.uint8)
    out = decode.resize_uint8(image, (5, 7))
    assert out.dtype == tf.uint8
    np.testing.assert_array_equal(out.numpy(), image.numpy())
    assert decode.resize_uint8(image, (10, 3)).shape == (10, 3, 3)


def test_center_crop_to_aspect():
    image = tf.reshape(tf.range(4 * 10), (4, 10, 1))
    crop = decode.center_crop_to_aspect(image, (2, 2))
    assert crop.shape == (4, 4, 1)
    assert crop.numpy()[0, :, 0].tolist() == [3, 4, 5, 6]
    tall = decode.center_crop_to_aspect(tf.zeros((9, 3, 3)), (1, 3))
    assert tall.shape == (1, 3, 3)
