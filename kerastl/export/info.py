"""What the exporters need to know about a kerastl model.

Reads the model's metadata with `kerastl.model_info` (backbone, task, class
names, input shape, preprocessing), checks the input size is fixed, and
derives the output names written to ``labels.txt``.
"""

from __future__ import annotations

from kerastl.data.files import name_problem
from kerastl.model import model_info


def model_metadata(model, *, class_names=None) -> dict:
    """Returns the model's metadata as a JSON-friendly dict.

    Args:
        model: A model built by `kerastl.build`.
        class_names: Optional names overriding the head's class names.

    Returns:
        A dict with ``backbone``, ``task``, ``num_outputs``, ``class_names``
        (list or None), ``labels`` (the names written to ``labels.txt``),
        ``input_shape`` (list H, W, C) and ``preprocessing``.

    Raises:
        ValueError: If the model is not a kerastl model, its input size is not
            fixed, `class_names` has the wrong length, or a class name has
            control characters (see `kerastl.data.files.name_problem`).

    Example:
        >>> kerastl.export.info.model_metadata(model)["task"]
        'multiclass'
    """
    shape = tuple(model.input_shape[1:]) if hasattr(model, "input_shape") else ()
    if len(shape) != 3 or any(d is None for d in shape):
        raise ValueError("kerastl.export needs a fixed input size (H, W, C); build the model "
                         f"with input_shape=(H, W, 3). Received: input_shape={shape!r}")
    info = model_info(model).to_dict()
    info["input_shape"] = [int(d) for d in info["input_shape"]]
    expected = 2 if info["task"] == "binary" else int(info["num_outputs"])
    if class_names is not None:
        class_names = [str(c) for c in class_names]
        if len(class_names) != expected:
            raise ValueError(f"`class_names` must have {expected} entries for "
                             f"task={info['task']!r}. Received: class_names={class_names!r}")
        info["class_names"] = class_names
    names = info.get("class_names")
    info["class_names"] = None if names is None else [str(c) for c in names]
    info["labels"] = info["class_names"] or [str(i) for i in range(expected)]
    for index, label in enumerate(info["labels"]):
        problem = name_problem(label)
        if problem:
            raise ValueError(
                f"Class names are written one per line (labels.txt, .tflite metadata); class "
                f"{index} {label!r} {problem}, so the labels would not line up with the "
                f"outputs. Pass `class_names` without it. Received: class_names="
                f"{info['labels']!r:.300}")
    return {key: info[key] for key in ("backbone", "task", "num_outputs", "class_names",
                                       "labels", "input_shape", "preprocessing")}
