"""`kerastl.training.FeatureCache`: frozen-backbone outputs computed once, reused.

While the bottom of a model is frozen, its outputs on the training images
do not change, so `kerastl.fit` computes them once and trains only the top
on the cached values:

* the head's pooled features (whole backbone frozen: train the head only);
* the activations where the frozen bottom blocks end (the frozen prefix:
  train the top blocks and the head).

An entry holds one pass of clean images plus `augment_passes` augmented
passes. It is keyed on the data object, the cut, the weights of the frozen
part and the augmentation, so another `fit` on the same data with a backbone
of the same weights (as in `kerastl.tune`) reuses it, and an entry whose
frozen weights changed is recomputed. A pooled entry is derived from a
prefix entry by running only the blocks in between (no image pass).

Entries larger than the memory left under `memory_limit` are written to
memory-mapped files on disk instead.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
import weakref

import keras
import numpy as np
import tensorflow as tf

from kerastl._validation import check_int
from kerastl.training.graph import Cut, segment

logger = logging.getLogger(__name__)

DEFAULT_MEMORY_LIMIT = 2 * 1024**3


class CachedData:
    """Cached activations of one dataset, with its labels (and sample weights).

    Attributes:
        arrays: ``[activations, labels]`` (+ sample weights); row
            ``p * num_examples + i`` is example ``i`` in pass ``p`` (pass 0 clean).
        num_examples: Examples per pass.
        passes: 1 + number of augmented passes.
        on_disk: Whether the arrays are memory-mapped files.
    """

    def __init__(self, arrays, num_examples: int, passes: int, on_disk: bool):
        self.arrays = arrays
        self.num_examples = num_examples
        self.passes = passes
        self.on_disk = on_disk

    @property
    def nbytes(self) -> int:
        return int(sum(a.nbytes for a in self.arrays))

    @property
    def labels(self) -> np.ndarray:
        """Labels of the clean pass."""
        return np.asarray(self.arrays[1][: self.num_examples])

    def dataset(self, *, batch_size: int, shuffle: bool,
                seed: int | None = None) -> tf.data.Dataset:
        """Returns batches of ``(activations, labels[, weights])``.

        An epoch has `num_examples` examples; each comes from a random pass.
        """
        n, passes, arrays = self.num_examples, self.passes, self.arrays
        indices = tf.data.Dataset.range(n)
        if shuffle:
            indices = indices.shuffle(n, seed=seed, reshuffle_each_iteration=True)
        indices = indices.batch(batch_size)
        if passes > 1:
            indices = indices.map(lambda i: i + n * tf.random.uniform(
                tf.shape(i), maxval=passes, dtype=tf.int64, seed=seed))

        def gather(i):
            return tuple(np.asarray(a[i]) for a in arrays)

        def load(i):
            out = tf.numpy_function(gather, [i], [tf.as_dtype(a.dtype) for a in arrays])
            for t, a in zip(out, arrays):
                t.set_shape((None,) + a.shape[1:])
            return tuple(out)

        return indices.map(load).prefetch(tf.data.AUTOTUNE)


class FeatureCache:
    """Cache of frozen-backbone outputs, shareable between `kerastl.fit` calls.

    Args:
        memory_limit: Bytes of cached arrays kept in memory; larger entries
            spill to memory-mapped files in `directory`.
        directory: Folder for spilled entries (default: a temporary folder,
            removed with the cache).

    Attributes:
        backbone_batches: Image batches run through the backbone (or its frozen
            prefix) so far: the expensive part, once per pass over the data.
        derived_batches: Batches of cached activations run through frozen
            blocks to derive another entry (no image pass).
        hits: Requests answered from an existing entry.

    Example:
        >>> cache = kerastl.training.FeatureCache()
        >>> kerastl.fit(model, data.train, data.validation, feature_cache=cache)
        >>> cache.backbone_batches
        32
    """

    def __init__(self, *, memory_limit: int = DEFAULT_MEMORY_LIMIT, directory: str | None = None):
        self.memory_limit = check_int("memory_limit", memory_limit, minimum=0)
        self.directory = None if directory is None else os.fspath(directory)
        self.backbone_batches = 0
        self.derived_batches = 0
        self.hits = 0
        self._entries: list[dict] = []
        # model -> {(start, end, pooling, input spec): [(augmenter, traced function)]}
        self._functions = weakref.WeakKeyDictionary()
        self._tmp = None
        self._finalizer = None

    @property
    def memory_bytes(self) -> int:
        """Bytes of the entries held in memory."""
        return sum(e["data"].nbytes for e in self._entries if not e["data"].on_disk)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        """Drops every entry and removes spilled files."""
        self._entries = []
        if self._finalizer is not None:
            self._finalizer()
            self._tmp = self._finalizer = None

    def get(self, model, dataset, cut: Cut, *, source=None, namespace=None,
            augment_passes: int = 0, augmenter=None, augmenter_key=None,
            progress: bool = False) -> CachedData:
        """Returns the cached activations of `dataset` at `cut`, computing them if needed.

        Args:
            model: The kerastl model (its layers compute the activations).
            dataset: A `tf.data.Dataset` of ``(images, labels[, weights])`` batches.
            cut: Where to cut the model (`kerastl.training.graph`).
            source: The object that identifies the data (default: `dataset`);
                the cache keeps a reference to it.
            namespace: A hashable that separates entries of one source: an entry
                replaces the earlier one of its source and cut only within its
                namespace (the default None: one model at a time per source, as
                in `kerastl.fit`; `kerastl.rank_backbones` keeps every
                candidate's features, one namespace each).
            augment_passes: Extra passes with `augmenter` applied to the images.
            augmenter: Callable ``augmenter(images, training=True)``.
            augmenter_key: Identifies the augmentation in the key.
            progress: Show the backbone pass: a `keras.utils.Progbar` in a
                terminal, one line when it ends otherwise.

        Returns:
            A `CachedData`.
        """
        source = dataset if source is None else source
        key = (cut.key(model), augment_passes, augmenter_key if augment_passes else None)
        def mine(entry):
            return entry["source"] is source and entry["namespace"] == namespace

        for entry in self._entries:
            if mine(entry) and entry["key"] == key:
                self.hits += 1
                return entry["data"]
        self._entries = [e for e in self._entries
                         if not (mine(e) and e["key"][0][0] == key[0][0])]
        data = self._derive(model, cut, [e for e in self._entries if mine(e)], key)
        if data is None:
            data = self._compute(model, dataset, cut, augment_passes, augmenter, progress)
        self._entries.append({"source": source, "namespace": namespace, "key": key, "cut": cut,
                              "data": data, "model": weakref.ref(model)})
        return data

    def _derive(self, model, cut, entries, key):
        for entry in entries:
            up = entry["cut"]
            if entry["model"]() is not model:
                continue
            if entry["key"][1:] != key[1:]:
                continue
            if not up.upstream_of(cut) or entry["key"][0] != up.key(model):
                continue
            data = entry["data"]
            fn = self._function(model, up, cut, tf.TensorSpec(
                (None,) + data.arrays[0].shape[1:], data.arrays[0].dtype))
            rows = len(data.arrays[0])
            out, count = None, 0
            for start in range(0, rows, 256):
                values = fn(tf.constant(data.arrays[0][start:start + 256])).numpy()
                if out is None:
                    out = self._allocate((rows,) + values.shape[1:], values.dtype)
                out[start:start + len(values)] = values
                count += 1
            self.derived_batches += count
            return CachedData([out] + list(data.arrays[1:]), data.num_examples, data.passes,
                              isinstance(out, np.memmap))
        return None

    def _compute(self, model, dataset, cut, augment_passes, augmenter,
                 progress=False) -> CachedData:
        spec = dataset.element_spec[0]
        spec = tf.TensorSpec((None,) + tuple(spec.shape[1:]), spec.dtype)
        clean = self._function(model, None, cut, spec)
        noisy = self._function(model, None, cut, spec, augmenter) if augment_passes else None
        sinks, num_examples = None, 0
        bar = _Progress(dataset, augment_passes + 1, cut.name) if progress else None
        for p in range(augment_passes + 1):
            for batch in dataset:
                if bar is not None:
                    bar.step()
                values = (clean if p == 0 else noisy)(batch[0]).numpy()
                columns = (values,) + tuple(np.asarray(r) for r in batch[1:])
                if sinks is None:
                    sinks = [_Sink(self, spill=(c == 0)) for c in range(len(columns))]
                for sink, column in zip(sinks, columns):
                    sink.append(column)
                self.backbone_batches += 1
                num_examples += len(values) if p == 0 else 0
        if bar is not None:
            bar.done()
        if not num_examples:
            raise ValueError("The training or validation data is empty. Received: a dataset "
                             "with no examples")
        arrays = [sink.finish() for sink in sinks]
        return CachedData(arrays, num_examples, augment_passes + 1,
                          isinstance(arrays[0], np.memmap))

    def _function(self, model, start, end, spec, augmenter=None):
        """The traced inference function of `model` from `start` to `end`, made once per model.

        Building the segment model and tracing it costs about as much as a
        small dataset's pass, and one `fit` asks for the same cut on its
        training and validation data (`kerastl.fewshot`, `kerastl.tune`: on
        many datasets). The function reads the model's variables when it
        runs, so new weights need no new function.
        """
        key = (None if start is None else start.name, end.name, end.pooling, spec)
        made = self._functions.setdefault(model, {}).setdefault(key, [])
        for known, function in made:
            if known is augmenter:
                return function
        function = _batched(segment(model, start, end), spec, augmenter)
        made.append((augmenter, function))
        return function

    def _allocate(self, shape, dtype):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        if self.memory_bytes + nbytes <= self.memory_limit:
            return np.empty(shape, dtype)
        path = self._spill_path(".npy")
        logger.warning("Feature cache: %.1f MiB would exceed memory_limit=%d bytes; "
                       "writing it to %s", nbytes / 2**20, self.memory_limit, path)
        return np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)

    def _spill_path(self, suffix: str) -> str:
        folder = self._spill_folder()
        return os.path.join(folder, f"entry_{len(os.listdir(folder))}{suffix}")

    def _spill_folder(self) -> str:
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
            return self.directory
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="kerastl_feature_cache_")
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._tmp, True)
        return self._tmp


def _batched(model, spec, augmenter=None):
    """Returns a traced-once function running `model` in inference mode on a batch."""

    def run(x):
        x = tf.cast(x, tf.float32)
        if augmenter is not None:
            x = augmenter(x, training=True)
        return tf.cast(model(x, training=False), tf.float32)

    return tf.function(run, input_signature=[spec])


class _Progress:
    """Progress of a backbone pass: a Keras progress bar in a terminal, else one line."""

    def __init__(self, dataset, passes: int, name: str):
        batches = int(dataset.cardinality())
        self.target = batches * passes if batches > 0 else None
        self.name, self.count, self.start = name, 0, time.perf_counter()
        self.bar = None
        if sys.stdout.isatty():
            print(f"Caching backbone outputs ({name}):")
            self.bar = keras.utils.Progbar(self.target, unit_name="batch")

    def step(self):
        self.count += 1
        if self.bar is not None:
            self.bar.update(self.count)

    def done(self):
        if self.bar is None:
            print(f"Cached backbone outputs ({self.name}): {self.count} batches in "
                  f"{time.perf_counter() - self.start:.1f} s")


class _Sink:
    """Collects one column of batches in memory, or streams it to disk past the limit."""

    def __init__(self, cache: FeatureCache, *, spill: bool):
        self.cache, self.spill = cache, spill
        self.chunks, self.nbytes, self.file, self.path = [], 0, None, None
        self.row_shape, self.dtype, self.rows = None, None, 0

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values)
        self.row_shape, self.dtype = values.shape[1:], values.dtype
        self.rows += len(values)
        self.nbytes += values.nbytes
        if self.file is not None:
            self.file.write(values.tobytes())
            return
        self.chunks.append(values)
        if self.spill and self.cache.memory_bytes + self.nbytes > self.cache.memory_limit:
            self.path = self.cache._spill_path(".bin")
            logger.warning("Feature cache: more than memory_limit=%d bytes; writing the "
                           "cached activations to %s", self.cache.memory_limit, self.path)
            self.file = open(self.path, "wb")
            for chunk in self.chunks:
                self.file.write(chunk.tobytes())
            self.chunks = []

    def finish(self) -> np.ndarray:
        shape = (self.rows,) + tuple(self.row_shape)
        if self.file is None:
            return np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
        self.file.close()
        return np.memmap(self.path, dtype=self.dtype, mode="r", shape=shape)


__all__ = ["CachedData", "DEFAULT_MEMORY_LIMIT", "FeatureCache"]
