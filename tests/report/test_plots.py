"""The PNG plots are real images and leave matplotlib's global backend alone."""

from __future__ import annotations

import matplotlib
import numpy as np
from PIL import Image

from kerastl.report.plots import plot_confusion_matrix, plot_training_curves, plot_trial_scores


def _is_png(path, min_size=(200, 150)):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 0  # something was drawn


def test_training_curves_confusion_matrix_and_trials(tmp_path):
    backend = matplotlib.get_backend()
    stages = [{"name": "head", "history": {"loss": [1.0, 0.5], "val_loss": [1.1, 0.8],
                                           "accuracy": [0.5, 0.8], "learning_rate": [1, 1]},
               "seconds": 1.0},
              {"name": "fine_tune", "history": {"loss": [0.4], "val_loss": [0.7]},
               "seconds": 2.0}]
    _is_png(plot_training_curves(stages, tmp_path / "curves.png", title="t"))
    _is_png(plot_confusion_matrix([[5, 1], [0, 4]], ["cat", "dog"], tmp_path / "cm.png"))
    trials = [{"trial_id": "0", "score": 0.5}, {"trial_id": "1", "score": None},
              {"trial_id": "2", "score": 0.8}]
    _is_png(plot_trial_scores(trials, tmp_path / "trials.png", objective="val_accuracy"))
    _is_png(plot_training_curves([], tmp_path / "empty.png"))
    assert matplotlib.get_backend() == backend
