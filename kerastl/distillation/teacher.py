"""The teacher's soft targets, computed once on the fixed views and cached.

The teacher is frozen, and every view is fixed before training (see
`kerastl.distillation.views`), so its outputs do not change between epochs:
they are computed once per view (each teacher at its own input size, with
its own preprocessing inside the model) and kept, like kerastl's feature
cache keeps a frozen backbone's outputs. An ensemble's target is the
average of its members' probabilities. Targets are stored as log
probabilities, which `keras.distillation.LogitsDistillation` reads as
logits (``softmax(log p / T)`` is ``p`` at temperature ``T``).
"""

from __future__ import annotations

import hashlib
import os
import time

import numpy as np

from kerastl.accessors import model_info
from kerastl.distillation.views import Images, view_dataset
from kerastl.training.graph import fingerprint

# Probabilities below this are clipped before the log (log(0) is -inf). They
# carry no mass after a softmax at any temperature >= 1e-3.
MIN_PROBABILITY = 1e-30


def input_size(model) -> tuple[int, int]:
    """``(height, width)`` a kerastl model takes."""
    shape = model_info(model).input_shape
    return int(shape[0]), int(shape[1])


def teacher_key(teachers) -> str:
    """A digest of the teachers' weights and input sizes (the cache key)."""
    digest = hashlib.sha256()
    for teacher in teachers:
        digest.update(f"{input_size(teacher)}:{fingerprint(teacher.layers)}".encode())
    return digest.hexdigest()


def _boxes_key(boxes) -> str:
    return hashlib.sha256(np.ascontiguousarray(boxes).data).hexdigest()


def predict_targets(teachers, images: Images, boxes: np.ndarray, *, batch_size: int = 32,
                    verbose: int = 0) -> np.ndarray:
    """Returns the ensemble's log probabilities on every view: float32 ``(n, views, classes)``.

    Args:
        teachers: kerastl models with the same number of classes.
        images: The images.
        boxes: Their views (`kerastl.distillation.views.view_boxes`).
        batch_size: Images per teacher call.
        verbose: 1 prints one line per teacher.
    """
    n, views = boxes.shape[:2]
    total = None
    for teacher in teachers:
        size = input_size(teacher)
        start = time.perf_counter()
        ds = view_dataset(images, boxes, size, batch_size=batch_size)
        probs = np.asarray(teacher.predict(ds, verbose=0), "float64")
        probs = probs.reshape(views, n, -1).transpose(1, 0, 2)
        if verbose:
            print(f"Teacher {teacher.name!r}: {n} images x {views} views at {size[0]}x{size[1]} "
                  f"({time.perf_counter() - start:.1f} s)")
        total = probs if total is None else total + probs
    mean = total / len(teachers)
    return np.log(np.maximum(mean, MIN_PROBABILITY)).astype("float32")


class TeacherCache:
    """Teacher outputs on fixed views, per image, shared between `distill` calls.

    An entry is one view's targets, keyed on the teachers' weights, the
    image's pixels and the view's box: distilling the same teachers into
    students of other sizes, with some labels dropped, or with more views, on
    the same images runs the teachers only on views they have not seen (an
    image's views depend only on the seed and its pixels, and its first k
    views are the same for any number of views, see
    `kerastl.distillation.views.view_boxes`). With `directory`, each call's
    new entries are also written there (one ``.npz`` file per call) and read
    back by a later process (a resumed run, a benchmark run in pieces).

    Args:
        directory: Folder for the files, or None (memory only).

    Attributes:
        computed: Views the teachers ran on (not found in memory or on disk).

    Example:
        >>> cache = kerastl.distillation.TeacherCache()
        >>> kerastl.distillation.distill(teacher, student_128, data, teacher_cache=cache)
        >>> kerastl.distillation.distill(teacher, student_160, data, teacher_cache=cache)
    """

    def __init__(self, directory: str | None = None):
        self.directory = directory
        self._entries: dict[str, np.ndarray] = {}
        self._read = False
        self.computed = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _read_directory(self) -> None:
        """Loads every entry written to `directory` (by this or an earlier process)."""
        if self.directory is None or self._read or not os.path.isdir(self.directory):
            return
        self._read = True
        for name in sorted(os.listdir(self.directory)):
            if name.startswith("teacher_") and name.endswith(".npz"):
                with np.load(os.path.join(self.directory, name)) as saved:
                    self._entries.update(zip(map(str, saved["keys"]), saved["targets"]))

    def _write(self, keys, targets) -> None:
        whole = hashlib.sha256("\n".join(keys).encode()).hexdigest()
        path = os.path.join(self.directory, f"teacher_{whole[:32]}.npz")
        if os.path.exists(path):
            return
        os.makedirs(self.directory, exist_ok=True)
        tmp = path + ".tmp.npz"
        np.savez(tmp, keys=np.array(keys), targets=targets)
        os.replace(tmp, path)

    def get(self, teachers, images: Images, boxes: np.ndarray, *, batch_size: int = 32,
            verbose: int = 0) -> np.ndarray:
        """Returns `predict_targets` for these teachers, images and views (cached per view)."""
        self._read_directory()
        teachers_key = teacher_key(teachers)
        n, views = boxes.shape[:2]
        keys = [f"{teachers_key}:{k}:{_boxes_key(b)}" for k, row in zip(images.keys, boxes)
                for b in row]
        first = {}
        for j, key in enumerate(keys):  # a view drawn twice (e.g. the same flip) runs once
            if key not in self._entries:
                first.setdefault(key, j)
        missing = list(first.values())
        if missing:
            rows, cols = np.divmod(np.asarray(missing), views)
            targets = predict_targets(teachers, images.subset(rows), boxes[rows, cols][:, None],
                                      batch_size=batch_size, verbose=verbose)[:, 0]
            self._entries.update(zip([keys[j] for j in missing], targets))
            self.computed += len(missing)
            if self.directory is not None:
                self._write([keys[j] for j in missing], targets)
        return np.stack([self._entries[key] for key in keys]).reshape(n, views, -1)

__all__ = ["MIN_PROBABILITY", "TeacherCache", "input_size", "predict_targets", "teacher_key"]
