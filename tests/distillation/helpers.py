"""A tiny trained teacher and a tiny student of another input size."""

import numpy as np
import tensorflow as tf
from harness import separable_images, tiny_kerastl_model, train_tiny_model


def teacher_and_data(num_classes=3, *, size=32, n=48, seed=0):
    """Returns ``(teacher, (x, y), (xv, yv))``: a tiny model trained on separable images."""
    x, y = separable_images(n, num_classes, size, seed=seed)
    xv, yv = separable_images(24, num_classes, size, seed=seed + 1)
    teacher = train_tiny_model(tiny_kerastl_model(num_classes, size=size, seed=seed + 10), x, y,
                               epochs=6)
    return teacher, (x, y), (xv, yv)


def kl(teacher, student, images) -> float:
    """Mean KL(teacher || student) on `images`, each model at its own input size."""
    probs = []
    for model in (teacher, student):
        size = tuple(model.inputs[0].shape[1:3])
        x = tf.image.resize(images, size, antialias=True).numpy()
        probs.append(np.clip(np.asarray(model.predict(x, verbose=0), "float64"), 1e-12, 1))
    p, q = probs
    return float(np.mean(np.sum(p * (np.log(p) - np.log(q)), axis=-1)))
