"""Task heads of a multi-task model: one `ClassificationHead` per task, named after it."""

from __future__ import annotations

import re

from kerastl.layers import ClassificationHead

RESERVED = ("image", "augmentation", "preprocessing", "backbone", "head")
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,63}$")


def check_tasks(tasks) -> dict:
    """Returns ``{task: class names or None}`` with each count checked.

    Args:
        tasks: ``{name: number of classes}`` or ``{name: [class names]}``, at
            least two tasks (every task is multiclass: softmax over >= 2 classes).

    Returns:
        ``{name: (num_classes, class_names or None)}`` in the given order.

    Example:
        >>> kerastl.multitask.heads.check_tasks({"species": 5, "healthy": ["no", "yes"]})
        {'species': (5, None), 'healthy': (2, ['no', 'yes'])}
    """
    if not isinstance(tasks, dict) or len(tasks) < 2:
        raise ValueError("`tasks` must be a dict of at least two {task name: number of classes "
                         f"or [class names]}}. Received: tasks={tasks!r}")
    out = {}
    for name, value in tasks.items():
        if not isinstance(name, str) or not _NAME.match(name) or name in RESERVED:
            raise ValueError("Task names must be identifiers (letters, digits, '_'; up to 64) "
                             f"and not one of {', '.join(RESERVED)}. Received: task {name!r}")
        names = None
        if isinstance(value, (list, tuple)):
            names, value = [str(v) for v in value], len(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise ValueError(f"Task {name!r} must have at least 2 classes (a count or a list "
                             f"of class names). Received: tasks[{name!r}]={tasks[name]!r}")
        out[name] = (value, names)
    return out


def task_outputs(tasks: dict, head_config, features) -> dict:
    """Returns ``{task: head(features)}``: one `ClassificationHead` per task, named after it."""
    return {name: ClassificationHead(count, task="multiclass", pooling=head_config.pooling,
                                     dropout=head_config.dropout,
                                     hidden_units=head_config.hidden_units,
                                     activation=head_config.activation, class_names=names,
                                     name=name)(features)
            for name, (count, names) in tasks.items()}


def get_heads(model) -> dict:
    """Returns ``{task: ClassificationHead}`` of a multi-task model, in its output order.

    Keras orders a functional model's dict outputs by name, so that is the order.
    """
    heads = {layer.name: layer for layer in model.layers if isinstance(layer, ClassificationHead)}
    if len(heads) < 2:
        raise ValueError(f"{model.name!r} is not a multi-task kerastl model (it has "
                         f"{len(heads)} head). Build one with kerastl.build(..., tasks={{...}}).")
    return {name: heads[name] for name in sorted(heads)}


__all__ = ["RESERVED", "check_tasks", "get_heads", "task_outputs"]
