"""Hyperparameter search for transfer learning: `kerastl.tune` on keras-tuner.

Example:
    >>> space = kerastl.SearchSpace.default_for("mobilenet_v2")
    >>> result = kerastl.tune(data.train, data.validation, backbone="mobilenet_v2",
    ...                       search_space=space, fine_tune_epochs=6)
    >>> result.best_hyperparameters
"""

from kerastl.tuning.result import TuneResult
from kerastl.tuning.space import ALL_BLOCKS, RECIPES, SearchSpace
from kerastl.tuning.tune import tune

__all__ = ["ALL_BLOCKS", "RECIPES", "SearchSpace", "TuneResult", "tune"]
