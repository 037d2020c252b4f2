"""`kerastl.data.from_tfds`: a tensorflow-datasets image classification dataset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from kerastl._validation import check_one_of, suggest
from kerastl.data import decode, options, pipeline
from kerastl.data.image_data import SPLITS, ImageData

LABEL_COUNT_BATCH = 4096


def _builder(name: str, data_dir: str | None, download: bool):
    import tensorflow_datasets as tfds

    if not isinstance(name, str) or not name:
        raise ValueError(f"`name` must be a tensorflow-datasets name such as 'tf_flowers'. "
                         f"Received: name={name!r}")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        close = suggest(name.split(":")[0], tfds.list_builders(with_community_datasets=False))
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown tensorflow-datasets dataset.{hint} Received: name={name!r}"
                         ) from e
    if not builder.is_prepared():
        if not download:
            raise FileNotFoundError(
                f"The tensorflow-datasets dataset {name!r} is not prepared in "
                f"'{builder.data_dir}'. Prepare it once on a machine with internet access "
                f"(`tfds build {name} --data_dir=DIR`, or "
                f"`tfds.builder({name!r}, data_dir=DIR).download_and_prepare()`) and pass "
                f"data_dir=DIR, or pass download=True.")
        builder.download_and_prepare()
    return builder


def _check_features(builder, image_key: str, label_key: str) -> list[str]:
    import tensorflow_datasets as tfds

    features = builder.info.features
    check_one_of("image_key", image_key, list(features.keys()))
    check_one_of("label_key", label_key, list(features.keys()))
    if not isinstance(features[label_key], tfds.features.ClassLabel):
        raise ValueError(f"`label_key` must name a class label feature; {label_key!r} is a "
                         f"{type(features[label_key]).__name__}. Received: label_key={label_key!r}")
    if not isinstance(features[image_key], tfds.features.Image):
        raise ValueError(f"`image_key` must name an image feature; {image_key!r} is a "
                         f"{type(features[image_key]).__name__}. Received: image_key={image_key!r}")
    return list(features[label_key].names)


def _split_names(split: Any) -> list[str]:
    specs = [split] if isinstance(split, str) else split
    ok = isinstance(specs, Sequence) and 1 <= len(specs) <= 3 and all(
        isinstance(s, str) and s for s in specs)
    if not ok:
        raise ValueError("`split` must be a split name or a sequence of 1 to 3 split names for "
                         "train, validation and test, e.g. ('train[:80%]', 'train[80%:]'). "
                         f"Received: split={split!r}")
    return list(specs)


def _label_counts(builder, spec: str, image_key: str, label_key: str, n: int) -> np.ndarray:
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(split=spec, decoders={image_key: tfds.decode.SkipDecoding()})
    ds = ds.map(lambda e: e[label_key]).batch(LABEL_COUNT_BATCH)
    counts = np.zeros(n, np.int64)
    for labels in ds.as_numpy_iterator():
        counts += np.bincount(labels, minlength=n)
    return counts


def _to_rgb(image: tf.Tensor) -> tf.Tensor:
    """8-bit RGB from a TFDS image (1, 3 or 4 channels, uint8 or uint16)."""
    if image.dtype == tf.uint16:
        image = tf.cast(tf.bitwise.right_shift(image, 8), tf.uint8)
    channels = image.shape[-1]
    if channels == 1:
        return tf.image.grayscale_to_rgb(image)
    if channels == 4:
        return image[..., :3]
    return image


def from_tfds(name: str, *, image_size: int | tuple[int, int],
              split: str | Sequence[str] = ("train", "validation"), data_dir: str | None = None,
              batch_size: int = 32, image_key: str = "image", label_key: str = "label",
              shuffle: bool = True, shuffle_files: bool = True, seed: int | None = 1337,
              cache: bool | str = True, crop_to_aspect_ratio: bool = False,
              download: bool = False) -> ImageData:
    """Loads a tensorflow-datasets image classification dataset.

    Nothing is downloaded unless ``download=True``: a dataset already prepared
    in `data_dir` is read offline.

    Args:
        name: Dataset name, optionally with config and version (``"tf_flowers:3.*.*"``).
        image_size: Size the images are resized to: an int or ``(height, width)``.
        split: Split specs for train, validation and test (1 to 3 of them), e.g.
            ``("train[:80%]", "train[80%:]")`` for a dataset with only a train split.
        data_dir: Folder of prepared tensorflow-datasets data (default: TFDS's).
        batch_size: Images per batch.
        image_key: Name of the image feature.
        label_key: Name of the class label feature (its names become `class_names`).
        shuffle: Whether to reshuffle the training split every epoch.
        shuffle_files: Whether to shuffle the order of the training split's files.
        seed: Seed of the shuffles.
        cache: Keep decoded images in memory (True), not at all (False), or in
            files starting with this path (a str).
        crop_to_aspect_ratio: Center-crop each image to the aspect ratio of
            `image_size` before resizing.
        download: Download and prepare the dataset when it is not in `data_dir`.

    Returns:
        A `kerastl.data.ImageData`.

    Raises:
        FileNotFoundError: The dataset is not prepared and ``download=False``.
        ValueError: Unknown dataset, feature keys or split.

    Example:
        >>> data = kerastl.data.from_tfds("tf_flowers", image_size=160,
        ...                               split=("train[:80%]", "train[80%:]"),
        ...                               data_dir="~/tensorflow_datasets")
        >>> data.class_names[:2]
        ['dandelion', 'daisy']
    """
    import tensorflow_datasets as tfds

    image_size = options.image_size_pair(image_size)
    batch_size = options.batch_size_int(batch_size)
    seed = options.seed_int(seed)
    cache = options.cache_option(cache)
    for flag_name, value in (("shuffle", shuffle), ("shuffle_files", shuffle_files),
                             ("crop_to_aspect_ratio", crop_to_aspect_ratio),
                             ("download", download)):
        options.flag(flag_name, value)
    specs = _split_names(split)
    builder = _builder(name, data_dir, download)
    names = _check_features(builder, image_key, label_key)

    def element(example):
        image = decode.resize_uint8(_to_rgb(example[image_key]), image_size,
                                    crop_to_aspect_ratio=crop_to_aspect_ratio)
        return image, tf.cast(example[label_key], tf.int64)

    datasets, counts, sizes = {}, {}, {}
    for split_name, spec in zip(SPLITS, specs):
        train = split_name == "train"
        ds = builder.as_dataset(split=spec, shuffle_files=train and shuffle_files,
                                read_config=tfds.ReadConfig(shuffle_seed=seed, try_autocache=False))
        ds = ds.map(element, num_parallel_calls=pipeline.AUTOTUNE)
        per_class = _label_counts(builder, spec, image_key, label_key, len(names))
        ds = pipeline.batch_and_prefetch(
            ds, num_examples=int(per_class.sum()), batch_size=batch_size,
            shuffle=shuffle and train, seed=seed, cache=pipeline.cache_for(cache, split_name))
        datasets[split_name] = pipeline.attach(ds, names)
        counts[split_name] = {n: int(c) for n, c in zip(names, per_class)}
        sizes[split_name] = int(per_class.sum())
    return ImageData(
        train=datasets["train"], validation=datasets.get("validation"),
        test=datasets.get("test"), class_names=names, num_classes=len(names),
        image_size=image_size, counts=counts, skipped=[], num_examples=sizes,
        batch_size=batch_size, label_type="int")
