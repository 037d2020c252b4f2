"""`kerastl.load_predictor`: one predictor for .keras, SavedModel and .tflite, decoding
image files exactly as training does."""

from __future__ import annotations

import numpy as np
import pytest
from harness import TINY_MODEL, assert_float32_close, make_image_folder
from PIL import Image

import kerastl
from kerastl.predictor import image_files, read_images, top_k_labels

LABELS = ["cat", "dog", "fox"]
SIZE = 32


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny 3-class model exported with SavedModel, .keras, float32 and int8 .tflite."""
    root = tmp_path_factory.mktemp("predictor")
    folder = make_image_folder(root / "photos", classes=tuple(LABELS), per_class=4, size=SIZE)
    data = kerastl.data.from_directory(folder, image_size=SIZE, batch_size=4, shuffle=False)
    model = kerastl.build("mobilenet", num_classes=3, input_shape=(SIZE, SIZE, 3), weights=None,
                          backbone_kwargs={"alpha": 0.25}, class_names=data.class_names)
    kerastl.export(model, root / "saved_models", quantization=("float32", "int8"),
                   representative_data=data.train, verbose=0)
    return root, folder


def test_every_format_loads_as_one_predictor_and_they_agree(exported):
    root, folder = exported
    version = root / "saved_models" / "1"
    predictors = {name: kerastl.load_predictor(path) for name, path in {
        "version": version, "saved_model": version / "saved_model",
        "float32": version / "model_float32.tflite", "int8": version / "model_int8.tflite",
        "newest": root / "saved_models", "keras": version / "model.keras"}.items()}
    assert {k: p.kind for k, p in predictors.items()} == {
        "version": "keras", "saved_model": "saved_model", "float32": "tflite",
        "int8": "tflite", "newest": "keras", "keras": "keras"}
    assert predictors["newest"].path == str(version / "model.keras")  # names what it ran
    for predictor in predictors.values():
        assert predictor.labels == LABELS and predictor.input_shape == (SIZE, SIZE, 3)
    files = image_files([folder / "dog"])
    images, read, skipped = read_images(files, (SIZE, SIZE))
    assert len(read) == 4 and skipped == []
    reference = predictors["keras"].predict(images)
    assert reference.shape == (4, 3)
    # The same model on the same images: equal up to float32 rounding.
    assert_float32_close(predictors["saved_model"].predict(images), reference, **TINY_MODEL)
    assert_float32_close(predictors["float32"].predict(images), reference, **TINY_MODEL)
    quantized = predictors["int8"].predict(images)
    # int8 outputs are multiples of 1/256 (uint8 softmax): sums within 3 steps of 1.
    np.testing.assert_allclose(quantized.sum(axis=1), 1.0, atol=3 / 256)
    # File paths give the same scores as the decoded arrays.
    np.testing.assert_array_equal(predictors["keras"].predict([str(p) for p in files]),
                                  reference)


def test_top_k_labels_and_skips_bad_files(exported, tmp_path):
    root, folder = exported
    predictor = kerastl.load_predictor(root / "saved_models" / "1" / "model.keras")
    best = predictor.top_k([str(folder / "cat" / "cat_0.jpg")], k=2)
    assert len(best) == 1 and len(best[0]) == 2
    assert best[0][0]["score"] >= best[0][1]["score"]
    assert {b["label"] for b in best[0]} <= set(LABELS)
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    (tmp_path / "notes.png").write_text("hello")
    Image.new("RGB", (SIZE, SIZE), (10, 200, 30)).save(tmp_path / "good.png")
    result = predictor.predict_files([tmp_path])
    assert [p.rsplit("/", 1)[-1] for p in result.paths] == ["good.png"]
    assert result.scores.shape == (1, 3)
    assert sorted(p.rsplit("/", 1)[-1] for p, _ in result.skipped) == ["broken.jpg",
                                                                         "notes.png"]
    with pytest.raises(ValueError, match="broken.jpg"):
        predictor.predict([str(tmp_path / "broken.jpg")])


def test_oversized_images_are_skipped_by_name(exported, tmp_path):
    root, _ = exported
    predictor = kerastl.load_predictor(root / "saved_models" / "1" / "model.keras")
    Image.new("L", (300, 200), 9).save(tmp_path / "big.png")
    Image.new("L", (20, 10), 9).save(tmp_path / "small.png")
    result = predictor.predict_files([tmp_path], max_pixels=50_000)
    assert [p.rsplit("/", 1)[-1] for p in result.paths] == ["small.png"]
    (path, reason), = result.skipped
    assert path.endswith("big.png") and "300x200" in reason


def test_bad_arrays_are_refused_with_the_shape_received(exported):
    root, _ = exported
    predictor = kerastl.load_predictor(root / "saved_models" / "1" / "model_float32.tflite")
    with pytest.raises(ValueError, match=r"\(N, 32, 32, 3\).*\(2, 32, 32, 1\)"):
        predictor.predict(np.zeros((2, SIZE, SIZE, 1)))
    with pytest.raises(ValueError, match="NaN"):
        predictor.predict(np.full((1, SIZE, SIZE, 3), np.nan))
    assert predictor.predict(np.zeros((0, SIZE, SIZE, 3))).shape == (0, 3)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        kerastl.load_predictor(tmp_path / "missing.keras")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=".keras or .tflite"):
        kerastl.load_predictor(tmp_path / "notes.txt")


def test_top_k_labels_sorted_capped_and_stable():
    rows = top_k_labels(np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]]), ["a", "b", "c"], 5)
    assert [p["label"] for p in rows[0]] == ["b", "c", "a"]
    assert rows[0][0] == {"label": "b", "index": 1, "score": pytest.approx(0.6)}
    assert [p["index"] for p in rows[1]] == [0, 2, 1]  # a tie keeps the lower index first


def test_image_files_expands_folders(tmp_path):
    folder = make_image_folder(tmp_path / "f", classes=("a",), per_class=3, size=40)
    files = image_files([folder / "a", folder / "a" / "a_0.jpg"])
    assert [p.name for p in files] == ["a_0.jpg", "a_1.jpg", "a_2.jpg", "a_0.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="No image files"):
        image_files([tmp_path / "empty"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_files([tmp_path / "nope.jpg"])


def _zoo(root):
    """One class folder per kind of file; returns {class: expected mean pixel or None}."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (24, 30, 3), dtype=np.uint8)
    kinds = {}

    def save(name, image, fmt, **kw):
        (root / name).mkdir(parents=True)
        image.save(root / name / f"{name}.{fmt.lower()}", fmt, **kw)

    save("rgb_jpeg", Image.fromarray(rgb), "JPEG", quality=95)
    save("rgb_png", Image.fromarray(rgb), "PNG")
    # 16-bit grayscale: 0x8080 everywhere; training keeps the top 8 bits -> 128.
    gray16 = Image.fromarray(np.full((24, 30), 0x8080, np.uint16))
    save("gray16_png", gray16, "PNG")
    kinds["gray16_png"] = 128.0
    save("rgba_png", Image.fromarray(np.dstack([rgb, np.full((24, 30), 40, np.uint8)])), "PNG")
    palette = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    save("palette_gif", palette, "GIF")
    save("palette_png", palette, "PNG")
    save("gray_jpeg", Image.fromarray(rgb[..., 0]), "JPEG", quality=95)
    return kinds


def test_prediction_decodes_the_zoo_exactly_as_training(tmp_path):
    expected_means = _zoo(tmp_path / "zoo")
    size = (20, 16)
    data = kerastl.data.from_directory(tmp_path / "zoo", image_size=size, batch_size=16,
                                       shuffle=False)
    trained = {}
    for images, labels in data.train:
        for image, label in zip(images.numpy(), labels.numpy()):
            trained[data.class_names[int(label)]] = image
    assert len(trained) == 7
    files = sorted((tmp_path / "zoo").glob("*/*"))
    images, read, skipped = read_images(files, size)
    assert skipped == [] and len(read) == 7
    for path, image in zip(read, images):
        kind = path.split("/")[-2]
        np.testing.assert_array_equal(image, trained[kind], err_msg=kind)
        if kind in expected_means:
            assert float(image.mean()) == expected_means[kind], kind
