"""Loading image data for transfer learning: folders, tensorflow-datasets, arrays.

Every loader returns a `kerastl.data.ImageData`: batched `tf.data` datasets of
float32 RGB images in [0, 255] and labels, the class names, per-class counts
and the files that had to be skipped.

Example:
    >>> data = kerastl.data.from_directory("photos", image_size=160, validation_split=0.2)
    >>> print(data)            # images per class and split
    >>> data.class_weight()    # for imbalanced classes
"""

from kerastl.data.arrays import from_arrays
from kerastl.data.directory import from_directory
from kerastl.data.image_data import ImageData
from kerastl.data.tfds import from_tfds
from kerastl.data.weights import compute_class_weight

__all__ = ["ImageData", "compute_class_weight", "from_arrays", "from_directory", "from_tfds"]
