"""The bad-file zoo: what is decoded to RGB, what is skipped and reported."""

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kerastl.data
from kerastl.data import decode, scan

SIZE = 8
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _noise_jpeg(size=64, seed=0) -> bytes:
    pixels = (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _gray16() -> np.ndarray:
    values = np.full((SIZE, SIZE), 257 * 100, np.uint16)
    values[:, 2] = 0
    values[:, 3] = 65535
    values[:, 4] = 32896  # 128 * 257
    return values


def _write_zoo(folder: Path) -> dict[str, np.ndarray | None]:
    """Writes one file per case; returns the expected RGB image (None: skipped)."""
    folder.mkdir(parents=True)
    expected = {}
    solid = lambda color: np.broadcast_to(np.array(color, np.uint8), (SIZE, SIZE, 3))

    (folder / "zero.jpg").write_bytes(b"")
    expected["zero.jpg"] = None
    (folder / "truncated.jpg").write_bytes(_noise_jpeg()[:1500])
    expected["truncated.jpg"] = None
    (folder / "text.jpg").write_text("this is not an image")
    expected["text.jpg"] = None
    (folder / "truncated.png").write_bytes(
        _png_bytes(Image.fromarray(_noise(SIZE * 4)))[:200])
    expected["truncated.png"] = None

    frames = [Image.new("RGB", (SIZE, SIZE), c) for c in (RED, BLUE)]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=50)
    expected["anim.gif"] = solid(RED)

    rgba = np.zeros((SIZE, SIZE, 4), np.uint8)
    rgba[...] = (10, 20, 30, 0)  # fully transparent: the color channels are kept as they are
    Image.fromarray(rgba, "RGBA").save(folder / "rgba.png")
    expected["rgba.png"] = solid((10, 20, 30))

    Image.new("L", (SIZE, SIZE), 77).save(folder / "gray.png")
    expected["gray.png"] = solid((77, 77, 77))
    Image.new("L", (SIZE, SIZE), 99).save(folder / "gray.jpg", quality=100)
    expected["gray.jpg"] = solid((99, 99, 99))

    Image.fromarray(_gray16()).save(folder / "gray16.png")
    assert Image.open(folder / "gray16.png").mode.startswith("I;16")
    expected["gray16.png"] = np.repeat((_gray16() >> 8).astype(np.uint8)[..., None], 3, -1)

    Image.new("RGB", (SIZE, SIZE), GREEN).save(folder / "rgb.bmp")
    expected["rgb.bmp"] = solid(GREEN)
    Image.new("RGB", (SIZE, SIZE), (200, 50, 25)).convert("P").save(folder / "palette.bmp")
    expected["palette.bmp"] = np.asarray(Image.open(folder / "palette.bmp").convert("RGB"))
    Image.new("RGB", (SIZE, SIZE), (1, 2, 3)).save(folder / "image.tiff")
    expected["image.tiff"] = solid((1, 2, 3))
    Image.new("RGB", (SIZE, SIZE), (9, 200, 90)).save(folder / "lossless.webp", lossless=True)
    expected["lossless.webp"] = solid((9, 200, 90))
    Image.new("CMYK", (SIZE, SIZE), (0, 255, 255, 0)).save(folder / "cmyk.jpg", quality=100)
    expected["cmyk.jpg"] = np.asarray(Image.open(folder / "cmyk.jpg").convert("RGB"))

    (folder / "notes.txt").write_text("not an image extension: ignored")
    (folder / ".hidden.jpg").write_bytes(b"")
    return expected


def _noise(size, seed=1):
    return (np.random.default_rng(seed).random((size, size, 3)) * 255).astype(np.uint8)


def _png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def zoo(tmp_path):
    expected = _write_zoo(tmp_path / "data" / "zoo")
    other = tmp_path / "data" / "other"
    other.mkdir()
    Image.new("RGB", (SIZE, SIZE), BLUE).save(other / "blue.png")
    expected_other = {"blue.png": np.broadcast_to(np.array(BLUE, np.uint8), (SIZE, SIZE, 3))}
    return tmp_path / "data", expected, expected_other


def test_bad_file_zoo(zoo):
    root, expected, expected_other = zoo
    bad = sorted(name for name, image in expected.items() if image is None)
    with pytest.warns(UserWarning, match=f"skipped {len(bad)} of {len(expected) + 1} files") as w:
        data = kerastl.data.from_directory(root, image_size=SIZE, shuffle=False, batch_size=64)
    message = str(w[0].message)
    assert all(name in message for name in bad)
    assert "notes.txt" not in message and ".hidden" not in message
    assert sorted(Path(p).name for p, _ in data.skipped) == bad
    reasons = {Path(p).name: reason for p, reason in data.skipped}
    assert reasons["zero.jpg"] == "empty file (0 bytes)"
    assert reasons["text.jpg"] == "not an image (unknown format)"
    assert reasons["truncated.jpg"].startswith("truncated or corrupt JPEG")
    assert reasons["truncated.png"].startswith("truncated or corrupt PNG")

    good = {**{k: v for k, v in expected.items() if v is not None}, **expected_other}
    assert data.counts["train"] == {"other": 1, "zoo": len(good) - 1}
    images = next(iter(data.train))[0].numpy()
    names = [Path(p).name for p in data.train.file_paths]
    assert sorted(names) == sorted(good)
    for name, image in zip(names, images):
        tolerance = 3 if name.endswith(".jpg") else 0
        np.testing.assert_allclose(image, good[name], atol=tolerance, err_msg=name)


def test_16_bit_png_maps_to_8_bit(zoo):
    root, _, _ = zoo
    with pytest.warns(UserWarning):
        data = kerastl.data.from_directory(root, image_size=SIZE, shuffle=False, batch_size=64)
    names = [Path(p).name for p in data.train.file_paths]
    image = next(iter(data.train))[0].numpy()[names.index("gray16.png")]
    assert image[0, :5, 0].tolist() == [100.0, 100.0, 0.0, 255.0, 128.0]


def test_class_with_only_bad_files(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "good" / "a.png")
    (tmp_path / "bad" / "broken.jpg").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 1 of 2"):
        with pytest.raises(ValueError, match="No readable images left in class folder\\(s\\) "
                                             "'bad' of the train split"):
            kerastl.data.from_directory(tmp_path, image_size=8)


def test_without_validation_bad_files_are_dropped_silently(zoo, recwarn):
    root, expected, expected_other = zoo
    data = kerastl.data.from_directory(root, image_size=SIZE, shuffle=False, batch_size=64,
                                       validate_files=False)
    assert not [w for w in recwarn if "skipped" in str(w.message)]
    assert data.skipped == []
    good = sum(v is not None for v in expected.values()) + len(expected_other)
    assert len(next(iter(data.train))[1]) == good


def test_choose_decoder():
    choose = scan.choose_decoder
    assert choose("JPEG", "RGB", 2000, 1500, (160, 160), True) == decode.JPEG_EIGHTH
    assert choose("JPEG", "RGB", 700, 500, (160, 160), True) == decode.JPEG_HALF
    assert choose("JPEG", "L", 700, 700, (160, 160), True) == decode.JPEG_QUARTER
    assert choose("JPEG", "RGB", 2000, 1500, (160, 160), False) == decode.TF
    assert choose("JPEG", "RGB", 227, 227, (160, 160), True) == decode.TF
    assert choose("JPEG", "CMYK", 2000, 1500, (160, 160), True) == decode.PIL
    assert choose("PNG", "I;16", 100, 100, (160, 160), True) == decode.TF
    assert choose("WEBP", "RGB", 100, 100, (160, 160), True) == decode.TF
    for fmt in ("GIF", "BMP", "TIFF"):
        assert choose(fmt, "RGB", 100, 100, (160, 160), True) == decode.PIL


def test_fast_decode_of_large_jpegs_matches_full_decode(tmp_path):
    y, x = np.mgrid[0:512, 0:384]
    smooth = np.stack([x / 384 * 255, y / 512 * 255, (x + y) / 896 * 255], -1).astype(np.uint8)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.fromarray(smooth).save(tmp_path / name / "big.jpg", quality=95)
    assert scan.check_file(str(tmp_path / "a" / "big.jpg"), (64, 48), True).decoder == \
        decode.JPEG_EIGHTH
    fast = kerastl.data.from_directory(tmp_path, image_size=(64, 48), shuffle=False)
    full = kerastl.data.from_directory(tmp_path, image_size=(64, 48), shuffle=False,
                                       fast_decode=False)
    fast_image = next(iter(fast.train))[0].numpy()
    full_image = next(iter(full.train))[0].numpy()
    reference = np.asarray(Image.fromarray(smooth).resize((48, 64), Image.BILINEAR), np.float32)
    assert np.abs(fast_image - full_image).mean() < 2.0
    assert np.abs(fast_image[0] - reference).mean() < 2.0


def test_check_files_keeps_order(tmp_path):
    paths = []
    for i in range(10):
        path = tmp_path / f"{i}.png"
        if i % 3:
            Image.new("RGB", (4, 4)).save(path)
        else:
            path.write_bytes(b"nope")
        paths.append(str(path))
    checks = scan.check_files(paths, (4, 4), max_workers=4)
    assert [c.path for c in checks] == paths
    assert [c.reason is None for c in checks] == [bool(i % 3) for i in range(10)]
