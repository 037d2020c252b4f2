"""kerastl.tune stops fine-tuning trials that fall far below their head warm-up (`prune`).

The tiny backbone and data of test_tune.py (tests/tuning/helpers.py); a callback wrecks the
weights in every fine-tuning step, so pruning has a clear reason to act.
"""

import keras
import pytest
import tensorflow as tf

from kerastl.tuning import SearchSpace, tune

from .helpers import TINY, Counting, tiny_data


@pytest.fixture(scope="module")
def data():
    return tiny_data()


class _WreckFineTuning(keras.callbacks.Callback):
    """Throws the trained weights far off in fine-tuning stages (not of `head_epochs`)."""

    def __init__(self, head_epochs):
        super().__init__()
        self.head_epochs = head_epochs

    def on_train_batch_end(self, batch, logs=None):
        if self.params.get("epochs") == self.head_epochs:
            return
        for weight in self.model.trainable_weights:
            weight.assign(tf.random.normal(weight.shape, stddev=20.0, seed=batch))


def test_fine_tuning_far_worse_than_its_warmup_is_pruned(data, tmp_path):
    # The first fine-tuning epoch ends far worse than the warm-up (val_loss):
    # the trial stops there and keeps the warm-up's weights and score.
    train, val = data
    space = SearchSpace(trainable_blocks=[2], learning_rate=1e-2, dropout=0.0)
    args = dict(backbone="mobilenet_v2", num_classes=3, algorithm="random", max_trials=1,
                epochs=2, objective="val_loss", seed=0, verbose=0, refit=False,
                directory=tmp_path, build_kwargs=TINY)
    result = tune(train, val, search_space=space, fine_tune_epochs=3, project_name="pruned",
                  fit_kwargs={"callbacks": [_WreckFineTuning(head_epochs=2)]}, **args)
    trial = result.trials[0]
    assert trial["pruned"] is True and trial["epochs"] == 1
    frozen = tune(train, val, search_space=SearchSpace(trainable_blocks=[0], learning_rate=1e-2,
                                                       dropout=0.0),
                  project_name="frozen", **args)
    assert trial["score"] == pytest.approx(frozen.trials[0]["score"], rel=1e-6)
    unpruned = tune(train, val, search_space=space, fine_tune_epochs=3, project_name="unpruned",
                    prune=False, fit_kwargs={"callbacks": [_WreckFineTuning(head_epochs=2)]},
                    **args)
    assert unpruned.trials[0]["pruned"] is False and unpruned.trials[0]["epochs"] == 3


def test_hyperband_does_not_continue_pruned_fine_tuning(data, tmp_path, monkeypatch):
    # Hyperband, fine_tune_epochs=3: three 1-epoch trials (all pruned: their
    # fine-tuning is wrecked), then the best one "continued" to 3 epochs: the
    # oracle keeps the earlier result and runs nothing for it (no build, no fit).
    counter = Counting(monkeypatch)
    space = SearchSpace(trainable_blocks=[2], learning_rate=(1e-3, 1e-2), dropout=0.0)
    result = tune(data[0], data[1], backbone="mobilenet_v2", num_classes=3,
                  search_space=space, max_trials=4, fine_tune_epochs=3, epochs=2,
                  objective="val_loss", seed=0, verbose=0, refit=False, directory=tmp_path,
                  fit_kwargs={"callbacks": [_WreckFineTuning(head_epochs=2)]},
                  build_kwargs=TINY)
    first, last = result.trials[:3], result.trials[3]
    assert all(t["pruned"] and t["epochs"] == 1 and not t["settled"] for t in first)
    earlier = next(t for t in first if t["trial_id"] == last["continued_from"])
    assert last["status"] == "COMPLETED" and last["settled"] is True
    assert last["pruned"] is True and last["epochs"] == 0 and last["seconds"] == 0.0
    assert last["score"] == pytest.approx(earlier["score"])
    assert counter.builds == 3  # the three 1-epoch trials only
    # The best model of a settled continuation is the weights of the trial it settled on.
    assert result.best_model is not None
