"""The images of a distillation run and their fixed augmented views.

Function matching (Beyer et al. 2022) needs the teacher and the student to
see the *same* augmented view of an image. Here a view is a crop box and a
flip drawn once per ``(image, view index)`` from the run's seed, so it can
be rendered again at any size: at the teacher's input size to cache the
teacher's outputs once, and at the student's size in every epoch. The
images are kept once, as uint8 at the size the data was loaded at.

View 0 of every image is the whole image, unflipped (what a model sees at
inference); the others are drawn by the ``augment`` mode:

* ``"crop_flip"``: a random-resized crop (25-100% of the area, aspect ratio
  3/4 to 4/3, as Inception's crop) and a horizontal flip half of the time;
* ``"flip"``: the whole image, flipped half of the time;
* ``"none"``: the whole image (every view the same; use ``views=1``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf

AUGMENTS = ("crop_flip", "flip", "none")
CROP_AREA = (0.25, 1.0)
CROP_ASPECT = (3 / 4, 4 / 3)
UNLABELED = -1


@dataclasses.dataclass
class Images:
    """Images in memory, sorted so that their order does not depend on the loader.

    Attributes:
        pixels: uint8 array ``(n, height, width, 3)``.
        labels: int64 class index per image, `UNLABELED` (-1) for unlabelled images.
        keys: SHA-1 of each image's pixels (its views are drawn from it, see `view_boxes`).
    """

    pixels: np.ndarray
    labels: np.ndarray
    keys: np.ndarray = None

    def __post_init__(self):
        if self.keys is None:
            self.keys = np.array([_key(p) for p in self.pixels], dtype=object)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_labeled(self) -> int:
        return int(np.sum(self.labels != UNLABELED))

    def digest(self) -> str:
        """SHA-256 of the pixels and labels (what a resumed run must find again)."""
        h = hashlib.sha256(f"{self.pixels.shape}".encode())
        h.update(np.ascontiguousarray(self.pixels).data)
        h.update(np.ascontiguousarray(self.labels).data)
        return h.hexdigest()

    @staticmethod
    def concatenate(parts) -> Images:
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            raise ValueError("`train` and `unlabeled` are both empty: nothing to distil on. "
                             "Received: 0 images")
        sizes = {p.pixels.shape[1:] for p in parts}
        if len(sizes) > 1:
            raise ValueError("`train` and `unlabeled` images must have the same size (load "
                             f"both at the same image_size). Received: sizes {sorted(sizes)}")
        return Images(np.concatenate([p.pixels for p in parts]),
                      np.concatenate([p.labels for p in parts]),
                      np.concatenate([p.keys for p in parts]))

    def subset(self, index) -> Images:
        return Images(self.pixels[index], self.labels[index], self.keys[index])


def _key(pixels) -> str:
    return hashlib.sha1(np.ascontiguousarray(pixels).data).hexdigest()


def _sorted(pixels: np.ndarray, labels: np.ndarray) -> Images:
    """Sorts examples by (label, pixel digest), so shuffled loaders give the same arrays."""
    keys = np.array([_key(p) for p in pixels], dtype=object)
    order = sorted(range(len(keys)), key=lambda i: (int(labels[i]), keys[i]))
    return Images(pixels[order], labels[order], keys[order])


def _to_uint8(images) -> np.ndarray:
    return np.clip(np.rint(np.asarray(images, "float32")), 0, 255).astype("uint8")


def _image_folder(path: str, image_size) -> tf.data.Dataset:
    """A dataset of ``(image, -1)`` batches of every image file under `path`."""
    from kerastl.data import files, pipeline, scan

    paths = files.image_files(path)
    checks = scan.check_files(paths, image_size, fast_decode=True)
    good = [c for c in checks if c.reason is None]
    if not good:
        raise ValueError(f"`unlabeled` folder has no readable images. Received: unlabeled={path!r}")
    return pipeline.file_dataset([c.path for c in good], [c.decoder for c in good],
                                 np.full(len(good), UNLABELED, np.int64), image_size=image_size,
                                 batch_size=64, shuffle=False, seed=None, cache=False)


def collect(name: str, value, *, labeled: bool, image_size=None) -> Images | None:
    """Reads a data argument into memory as `Images`.

    Args:
        name: The argument's name, for errors (``"train"``, ``"unlabeled"``...).
        value: None; a `kerastl.data.ImageData` (its ``train`` split); a
            `tf.data.Dataset` of ``(images, labels)`` batches (or of image
            batches when not `labeled`); a tuple ``(x, y)`` of arrays, or an
            array of images when not `labeled` (zero images are allowed);
            a folder of images (not `labeled`; read at `image_size`).
        labeled: Whether the data has labels.
        image_size: ``(height, width)`` to read a folder at.

    Returns:
        `Images`, or None for None.
    """
    from kerastl.data import ImageData

    if value is None:
        return None
    if isinstance(value, ImageData):
        value = value.train
    if isinstance(value, (str, os.PathLike)) and not labeled:
        value = _image_folder(os.fspath(value), image_size)
    if isinstance(value, tf.data.Dataset):
        return _from_dataset(name, value, labeled=labeled)
    if labeled and isinstance(value, (tuple, list)) and len(value) == 2:
        x, y = (np.asarray(v) for v in value)
    elif not labeled and not isinstance(value, (tuple, list, dict)):
        x = np.asarray(value)
        y = np.full(len(x), UNLABELED, np.int64)
    else:
        raise TypeError(f"`{name}` must be " + (
            "a tuple (x, y) of arrays, a tf.data.Dataset of (images, labels) batches or a "
            "kerastl.data.ImageData" if labeled else
            "a folder of images, an array of images, a tf.data.Dataset of image batches or "
            "a kerastl.data.ImageData") + f". Received: {name}={value!r:.200}")
    return _checked(name, x, y, labeled=labeled)


def _from_dataset(name, dataset, *, labeled):
    xs, ys = [], []
    for batch in dataset:
        x = batch[0] if isinstance(batch, (tuple, list)) else batch
        if len(x.shape) == 3:
            x = x[None]
        xs.append(_to_uint8(x))
        n = len(xs[-1])
        if labeled:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError(f"`{name}` must yield (images, labels) batches. "
                                 f"Received: element_spec={dataset.element_spec}")
            ys.append(np.asarray(batch[1]).reshape(n, -1)[:, 0] if np.ndim(batch[1]) > 1
                      and np.shape(batch[1])[-1] == 1 else np.asarray(batch[1]))
        else:
            ys.append(np.full(n, UNLABELED, np.int64))
    if not xs:
        raise ValueError(f"`{name}` is empty. Received: {name}={dataset!r:.200}")
    return _checked(name, np.concatenate(xs), np.concatenate(ys), labeled=labeled)


def _checked(name, x, y, *, labeled):
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) != len(y):
        raise ValueError(f"`{name}` images must be RGB of shape (n, height, width, 3) with one "
                         f"label each. Received: images of shape {x.shape}, {len(y)} labels")
    if labeled and (y.ndim != 1 or not np.issubdtype(y.dtype, np.integer)
                    and not np.all(np.mod(y, 1) == 0)):
        raise ValueError(f"`{name}` labels must be integer class indices (one per image). "
                         f"Received: labels of shape {y.shape} and dtype {y.dtype}")
    y = y.astype("int64")
    if labeled and len(y) and y.min() < 0:
        raise ValueError(f"`{name}` labels must be class indices >= 0. Received: a label "
                         f"{int(y.min())}")
    return _sorted(_to_uint8(x), y)


def resized(images: np.ndarray, size) -> np.ndarray:
    """RGB images in [0, 255] resized (antialiased) to ``(height, width)``, as float32."""
    if tuple(images.shape[1:3]) == tuple(size):
        return np.asarray(images, "float32")
    out = [tf.image.resize(np.asarray(images[i:i + 64], "float32"), size, antialias=True).numpy()
           for i in range(0, len(images), 64)]
    return np.clip(np.concatenate(out), 0, 255).astype("float32")


def view_boxes(keys, views: int, *, augment: str, seed: int | None) -> np.ndarray:
    """Returns the crop boxes of every view: float32 ``(n, views, 5)``.

    Each row is ``(top, left, height, width, flip)`` in fractions of the image
    (flip is 0 or 1). View 0 is the whole image, unflipped. The views of an
    image are drawn from ``(seed, its key)`` alone, one after the other, so an
    image keeps its views in any dataset (with or without its label, in any
    order), its first k views are the same for any `views` >= k, and the
    teacher's outputs on them can be reused (`kerastl.distillation.TeacherCache`).

    Args:
        keys: One key per image: `Images.keys` (hex digests) or ints.
        views: Views per image.
        augment: One of `AUGMENTS`.
        seed: The run's seed (None: 0).

    Example:
        >>> boxes = kerastl.distillation.views.view_boxes(range(10), 4, augment="crop_flip",
        ...                                               seed=0)
        >>> boxes.shape
        (10, 4, 5)
    """
    rows = [_image_boxes(np.random.default_rng(
        [0 if seed is None else seed, int(k, 16) % 2**63 if isinstance(k, str) else int(k)]),
        views, augment) for k in keys]
    return np.stack(rows) if rows else np.zeros((0, views, 5), "float32")


def _image_boxes(rng, views: int, augment: str) -> np.ndarray:
    # One row of 5 uniforms per view, drawn in order: the first k views of an
    # image are the same for any `views` >= k (their teacher outputs are reused).
    u = rng.random((views, 5))
    area = CROP_AREA[0] + u[:, 0] * (CROP_AREA[1] - CROP_AREA[0])
    aspect = np.exp(np.log(CROP_ASPECT[0]) + u[:, 1] * np.log(CROP_ASPECT[1] / CROP_ASPECT[0]))
    flip = (u[:, 2] < 0.5).astype("float32")
    if augment == "crop_flip":
        height = np.minimum(1.0, np.sqrt(area / aspect))
        width = np.minimum(1.0, np.sqrt(area * aspect))
    else:
        height = width = np.ones(views)
    if augment == "none":
        flip[:] = 0.0
    top = u[:, 3] * (1.0 - height)
    left = u[:, 4] * (1.0 - width)
    boxes = np.stack([top, left, height, width, flip], axis=-1).astype("float32")
    boxes[0] = (0.0, 0.0, 1.0, 1.0, 0.0)
    return boxes


def render(image, box, size) -> tf.Tensor:
    """Renders one view: the box cropped from a uint8 image, flipped, resized to `size`.

    Args:
        image: uint8 tensor ``(height, width, 3)``.
        box: float32 ``(top, left, height, width, flip)`` in fractions.
        size: ``(height, width)`` of the result.

    Returns:
        float32 RGB in [0, 255] of shape ``(*size, 3)`` (antialiased resize).
    """
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    top = tf.cast(tf.floor(box[0] * shape[0]), tf.int32)
    left = tf.cast(tf.floor(box[1] * shape[1]), tf.int32)
    height = tf.maximum(1, tf.cast(tf.round(box[2] * shape[0]), tf.int32))
    width = tf.maximum(1, tf.cast(tf.round(box[3] * shape[1]), tf.int32))
    height = tf.minimum(height, tf.shape(image)[0] - top)
    width = tf.minimum(width, tf.shape(image)[1] - left)
    crop = tf.image.crop_to_bounding_box(image, top, left, height, width)
    crop = tf.cond(box[4] > 0.5, lambda: tf.image.flip_left_right(crop), lambda: crop)
    out = tf.image.resize(tf.cast(crop, tf.float32), size, antialias=True)
    return tf.clip_by_value(out, 0.0, 255.0)


def loader(images: Images, boxes: np.ndarray, size):
    """Returns a `tf.data` map function ``(index, view) -> rendered view`` at `size`.

    The pixels stay in NumPy; each example is read through `tf.numpy_function`.
    """
    pixels = images.pixels

    def read(i, v):
        return pixels[i], boxes[i, v]

    def load(i, v):
        image, box = tf.numpy_function(read, [i, v], [tf.uint8, tf.float32])
        image.set_shape(pixels.shape[1:])
        box.set_shape((5,))
        return render(image, box, size)

    return load


def view_dataset(images: Images, boxes: np.ndarray, size, *,
                 batch_size: int) -> tf.data.Dataset:
    """Batches of every view of every image (view-major: all of view 0 first) at `size`."""
    n, views = boxes.shape[:2]
    load = loader(images, boxes, size)
    ds = tf.data.Dataset.from_tensor_slices((np.tile(np.arange(n, dtype=np.int64), views),
                                             np.repeat(np.arange(views, dtype=np.int64), n)))
    return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)


__all__ = ["AUGMENTS", "Images", "UNLABELED", "collect", "loader", "render", "resized", "view_boxes", "view_dataset"]
