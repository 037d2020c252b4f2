"""`kerastl.fit(seed=...)` is reproducible whatever the process built before the model."""

import numpy as np
from harness import assert_same_random_streams, separable_images

import kerastl
from kerastl.training import fit
from kerastl.training.fitting import reseed_layers


def _model():
    return kerastl.build("mobilenet", 3, input_shape=(32, 32, 3), weights=None,
                         backbone_kwargs={"alpha": 0.25}, head={"dropout": 0.5})


def _seed_states(model):
    return [np.asarray(v) for v in model.variables if "seed_generator_state" in v.path]


def _fit(before: int, start):
    x, y = separable_images(48, 3, 32, seed=4)
    for _ in range(before):  # other models built first move Keras's global random state
        _model()
    model = _model()
    model.set_weights(start)  # the same starting weights: only the layers' random streams differ
    built_with = _seed_states(model)
    fit(model, (x[:36], y[:36]), (x[36:], y[36:]), recipe="fine_tune", epochs=2,
        trainable_blocks=1, head_solver="gradient", seed=3, verbose=0)
    return built_with, _seed_states(model), model.get_weights()


def test_fit_seed_draws_the_same_dropout_masks_however_many_models_came_before():
    start = _model().get_weights()
    assert_same_random_streams(_fit(0, start), _fit(2, start))


def test_reseed_layers_gives_each_generator_its_own_stream_from_the_seed():
    def build():
        return kerastl.build("mobilenet", 3, input_shape=(32, 32, 3), weights=None,
                             backbone_kwargs={"alpha": 0.25}, head={"dropout": 0.5},
                             augmentation="default")

    first, second = build(), build()
    assert not np.array_equal(_seed_states(first)[0], _seed_states(second)[0])
    reseed_layers(first, 7)
    reseed_layers(second, 7)
    states = _seed_states(first)
    assert len(states) >= 2  # the augmentation layers' and the head dropout's
    assert len({tuple(s.tolist()) for s in states}) == len(states)  # no two share a stream
    for a, b in zip(states, _seed_states(second)):
        np.testing.assert_array_equal(a, b)
    reseed_layers(second, 8)
    assert not np.array_equal(_seed_states(second)[0], states[0])
