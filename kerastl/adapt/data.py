"""What `kerastl.adapt` accepts as source and target data, as `kerastl.training.inputs.Data`.

Target images come without labels: a folder of images (any depth; class
folders inside are read as plain images and their names ignored), a
``(n, height, width, 3)`` array, or a `tf.data.Dataset` of images (or of
``(images, labels)``, whose labels are ignored). Either way the result is a
dataset of ``(images, 0)`` batches, which the `kerastl.training.FeatureCache`
can cache like any labelled split.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

import numpy as np
import tensorflow as tf

from kerastl.training.inputs import Data, as_data, check_inputs


@dataclasses.dataclass
class Target(Data):
    """Unlabelled target images (a `Data` whose labels are all 0).

    Attributes:
        description: What the images came from (for reports).
        ignored_labels: Whether labels or class folders were found and ignored.
    """

    description: str = ""
    ignored_labels: bool = False


def _ignored(what: str) -> None:
    warnings.warn(f"kerastl.adapt: the target data has {what}; adaptation uses only the "
                  "target images' pixels, so the labels are ignored.", UserWarning,
                  stacklevel=4)


def _from_folder(folder: str, image_size, batch_size: int) -> Target:
    from kerastl.data import files, pipeline, scan

    if not os.path.isdir(folder):
        what = "a file" if os.path.exists(folder) else "does not exist"
        raise FileNotFoundError(f"`target` must be a folder of images. Received: "
                                f"target={folder!r} ({what})")
    paths = files.image_files(folder)
    if not paths:
        raise ValueError(f"The target folder has no images (files ending with "
                         f"{', '.join(files.IMAGE_EXTENSIONS)}). Received: target={folder!r}")
    checks = scan.check_files(paths, image_size)
    bad = [(c.path, c.reason) for c in checks if c.reason is not None]
    good = [c for c in checks if c.reason is None]
    if bad:
        listed = "\n".join(f"  {p}: {r}" for p, r in bad[:10])
        warnings.warn(f"kerastl.adapt skipped {len(bad)} of {len(paths)} target files that are "
                      f"not readable images:\n{listed}", UserWarning, stacklevel=3)
    if not good:
        raise ValueError(f"None of the {len(paths)} target files could be read as an image. "
                         f"Received: target={folder!r}")
    labelled = bool(files.subfolders(folder))
    if labelled:
        _ignored("class folders")
    ds = pipeline.file_dataset([c.path for c in good], [c.decoder for c in good],
                               np.zeros(len(good), np.int64), image_size=image_size,
                               batch_size=batch_size, shuffle=False, seed=None, cache=True)
    ds.file_paths = [c.path for c in good]
    n = len(good)
    return Target(ds, ds, n, batch_size, -(-n // batch_size), description=folder,
                  ignored_labels=labelled)


def _unlabelled(ds: tf.data.Dataset) -> tuple[tf.data.Dataset, bool]:
    spec = ds.element_spec
    if isinstance(spec, tuple):
        if len(spec) < 1 or len(spec) > 3:
            raise ValueError("`target` must yield images or (images, labels) tuples. "
                             f"Received: element_spec={spec}")
        if len(spec) > 1:
            _ignored("labels")
        return ds.map(lambda x, *rest: (x, tf.zeros(tf.shape(x)[:1], tf.int64))), len(spec) > 1
    if isinstance(spec, dict):
        raise ValueError("`target` must yield images or (images, labels) tuples. "
                         f"Received: element_spec={spec}")
    return ds.map(lambda x: (x, tf.zeros(tf.shape(x)[:1], tf.int64))), False


def as_target(target, *, input_shape, batch_size: int = 32) -> Target:
    """Returns `target` as unlabelled `Target` batches of the model's input shape.

    Args:
        target: A folder path, an array of images, a `tf.data.Dataset` of images or
            ``(images, labels)`` (labels ignored), a `kerastl.data.ImageData`
            (its ``train`` images) or a `Target`.
        input_shape: The model's input shape ``(batch, height, width, channels)``.
        batch_size: Batch size for folders and arrays.

    Returns:
        A `Target`.

    Raises:
        ValueError: No images, or images of another size than the model's input.

    Example:
        >>> target = kerastl.adapt.data.as_target("phone_photos/", input_shape=model.input_shape)
        >>> target.num_examples
        200
    """
    from kerastl.data import ImageData

    if isinstance(target, Target):
        return target
    if isinstance(target, (str, os.PathLike)):
        return _from_folder(os.fspath(target), tuple(input_shape[1:3]), batch_size)
    if isinstance(target, ImageData):
        target = target.train
    labelled = False
    if isinstance(target, tf.data.Dataset):
        spec = target.element_spec
        rank = (spec[0] if isinstance(spec, tuple) else spec).shape.rank
        ds, labelled = _unlabelled(target.batch(batch_size) if rank == 3 else target)
        source = target
        data = as_data("target", ds, batch_size=batch_size, shuffle=False, seed=None)
    else:
        images = np.asarray(target[0] if isinstance(target, tuple) else target)
        if isinstance(target, tuple) and len(target) > 1:
            _ignored("labels")
            labelled = True
        if images.ndim != 4 or len(images) == 0:
            raise ValueError("`target` images must be a non-empty array of shape (n, height, "
                             f"width, 3). Received: an array of shape {images.shape}")
        source = target
        data = as_data("target", (images, np.zeros(len(images), np.int64)),
                       batch_size=batch_size, shuffle=False, seed=None)
    check_inputs(data, name="target", input_shape=input_shape, task="multiclass",
                 num_outputs=1)
    return Target(data.dataset, source, data.num_examples, data.batch_size, data.num_batches,
                  description=type(source).__name__, ignored_labels=labelled)


def as_source(name: str, value, *, model, batch_size: int = 32) -> Data | None:
    """Returns labelled source data as `Data`, checked against `model` (None stays None).

    A `kerastl.data.ImageData` gives its ``train`` split (`as_source_pair` also
    returns its validation split).
    """
    from kerastl.accessors import model_info
    from kerastl.data import ImageData

    if value is None or isinstance(value, Data):
        return value
    if isinstance(value, ImageData):
        value = value.train
    data = as_data(name, value, batch_size=batch_size, shuffle=False, seed=None)
    info = model_info(model)
    check_inputs(data, name=name, input_shape=model.input_shape, task=info.task,
                 num_outputs=info.num_outputs)
    return data


def as_source_pair(train, validation):
    """Unpacks a `kerastl.data.ImageData` into ``(train, validation)`` as `kerastl.fit` does."""
    from kerastl.data import ImageData

    if isinstance(train, ImageData):
        if validation is None:
            validation = train.validation
        train = train.train
    if isinstance(validation, ImageData):
        validation = validation.validation
    return train, validation


__all__ = ["Target", "as_source", "as_source_pair", "as_target"]
