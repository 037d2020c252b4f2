"""`kerastl.data.ImageData`: the datasets a loader returns, with their metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kerastl.data.weights import compute_class_weight

SPLITS = ("train", "validation", "test")
LABEL_TYPES = ("int", "multi_hot", "float")


@dataclass(repr=False)
class ImageData:
    """Batched `tf.data` datasets of images and labels, plus what is known about them.

    Each dataset yields ``(images, labels)`` batches: float32 RGB images in
    [0, 255] of shape ``(batch, height, width, 3)`` and labels (int64 class
    indices of shape ``(batch,)`` for ``label_type="int"``, float32 otherwise).
    Every dataset also has a ``class_names`` attribute, like the datasets of
    `keras.utils.image_dataset_from_directory`.

    Attributes:
        train: Training batches (shuffled each epoch when requested).
        validation: Validation batches in a fixed order, or None.
        test: Test batches in a fixed order, or None.
        class_names: Class names; label ``i`` is ``class_names[i]``.
        num_classes: Number of classes (number of outputs for multi-hot or
            float labels).
        image_size: ``(height, width)`` of the images.
        counts: ``{split: {class_name: count}}``; for multi-hot labels the
            number of positives per class, for float labels empty dicts.
        skipped: ``(path, reason)`` of every file that could not be read.
        num_examples: ``{split: number of images}``.
        batch_size: Batch size of the datasets.
        label_type: ``"int"`` (class indices), ``"multi_hot"`` or ``"float"``.

    Example:
        >>> data = kerastl.data.from_directory("flowers", image_size=160, validation_split=0.2)
        >>> print(data)
        >>> model.fit(data.train, validation_data=data.validation,
        ...           class_weight=data.class_weight())
    """

    train: Any
    validation: Any
    test: Any
    class_names: list[str]
    num_classes: int
    image_size: tuple[int, int]
    counts: dict[str, dict[str, int]]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    num_examples: dict[str, int] = field(default_factory=dict)
    batch_size: int = 32
    label_type: str = "int"

    @property
    def splits(self) -> list[str]:
        """Names of the splits that are present, in train/validation/test order."""
        return [s for s in SPLITS if getattr(self, s) is not None]

    def class_weight(self, mode: str = "balanced") -> dict[int, float]:
        """Returns class weights computed from the training counts.

        Args:
            mode: ``"balanced"`` (``n_samples / (n_classes * count)``) or ``"sqrt"``.

        Returns:
            ``{class_index: weight}`` for `keras.Model.fit`'s `class_weight`.

        Example:
            >>> data = kerastl.data.from_directory("photos", image_size=160)
            >>> data.class_weight()
            {0: 0.75, 1: 1.5}
        """
        if self.label_type != "int":
            raise ValueError("Class weights need integer class labels. This data has "
                             f"label_type={self.label_type!r}")
        return compute_class_weight(dict(self.counts["train"]), mode=mode)

    def summary(self) -> str:
        """Returns a table of the number of images per class and split."""
        splits = self.splits
        head = (f"ImageData: {self.num_classes} classes, images {self.image_size[0]}x"
                f"{self.image_size[1]}, batch_size {self.batch_size}, labels {self.label_type}")
        lines = [head]
        rows = [(name, [self.counts.get(s, {}).get(name) for s in splits])
                for name in self.class_names if any(self.counts.get(s) for s in splits)]
        rows.append(("total", [self.num_examples.get(s) for s in splits]))
        width = max([len("class")] + [len(name) for name, _ in rows])
        cols = [max(len(s), 6) for s in splits]
        lines.append("  " + "class".ljust(width) + "".join(
            "  " + s.rjust(c) for s, c in zip(splits, cols)))
        for name, values in rows:
            cells = "".join("  " + ("-" if v is None else str(v)).rjust(c)
                            for v, c in zip(values, cols))
            lines.append("  " + name.ljust(width) + cells)
        if self.skipped:
            lines.append(f"  skipped {len(self.skipped)} unreadable file(s) (see .skipped)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={self.num_examples.get(s)}" for s in self.splits)
        return (f"ImageData(num_classes={self.num_classes}, image_size={self.image_size}, "
                f"{sizes}, skipped={len(self.skipped)})")
