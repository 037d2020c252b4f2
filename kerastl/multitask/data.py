"""One dataset per task, drawn into one stream of batches with per-task masks.

Each batch comes from one task's data (the tasks may come from different
image folders): its labels for the other tasks are zeros with sample weight 0,
so a task missing from a batch contributes nothing to its loss or metrics.
"""

from __future__ import annotations

import tensorflow as tf

from kerastl.training.inputs import as_data


def check_task_data(name: str, data, tasks, *, required: bool) -> dict:
    """Returns ``{task: data}`` with the task names checked against the model's tasks."""
    if data is None and not required:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"`{name}` must be a dict {{task: dataset or (x, y)}} for a multi-task "
                         f"model with tasks {list(tasks)}. Received: {name}={type(data).__name__}")
    unknown = [t for t in data if t not in tasks]
    if unknown:
        raise ValueError(f"`{name}` names unknown tasks {unknown}; the model's tasks are "
                         f"{list(tasks)}.")
    missing = [t for t in tasks if t not in data]
    if required and missing:
        raise ValueError(f"`{name}` has no data for tasks {missing}: every head needs "
                         "training data.")
    return dict(data)


def _masked(task: str, tasks, with_weights: bool):
    def to_all_tasks(images, labels, *weights):
        labels = tf.cast(tf.reshape(labels, [-1]), "int32")
        zeros = tf.zeros_like(labels)
        weight = tf.cast(tf.reshape(weights[0], [-1]), "float32") if weights else \
            tf.ones_like(labels, "float32")
        ys = {t: labels if t == task else zeros for t in tasks}
        ws = {t: weight if t == task else tf.zeros_like(weight) for t in tasks}
        return images, ys, ws
    return to_all_tasks


def task_stream(name: str, data: dict, tasks, *, batch_size: int, shuffle: bool, seed,
                interleave: bool, features=None):
    """Returns ``(dataset, {task: examples})`` of masked batches drawn from every task.

    Training batches are drawn at random in proportion to each task's number of
    batches (every batch once per epoch); validation batches follow task by task.
    `features`, if given, maps ``(kerastl.training.inputs.Data, shuffle)`` to
    its batches of cached activations (`kerastl.multitask.cache.activations`),
    which then stand in for the images.
    """
    parts, counts, sizes = [], {}, []
    for task, value in data.items():
        prepared = as_data(f"{name}[{task!r}]", value, batch_size=batch_size, shuffle=shuffle,
                           seed=seed)
        batches = prepared.dataset if features is None else features(prepared, shuffle)
        with_weights = len(batches.element_spec) == 3
        parts.append(batches.map(_masked(task, list(tasks), with_weights)))
        counts[task] = prepared.num_examples
        sizes.append(max(1, prepared.num_batches))
    if not interleave or len(parts) == 1:
        stream = parts[0]
        for part in parts[1:]:
            stream = stream.concatenate(part)
        return stream, counts
    weights = [s / sum(sizes) for s in sizes]
    stream = tf.data.Dataset.sample_from_datasets(parts, weights=weights, seed=seed,
                                                  stop_on_empty_dataset=False)
    # Every batch once: Keras then knows the epoch's length.
    return stream.apply(tf.data.experimental.assert_cardinality(sum(sizes))), counts


__all__ = ["check_task_data", "task_stream"]
