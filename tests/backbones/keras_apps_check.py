"""The check of one registered Keras Applications spec against its real model.

Used by `test_keras_apps.py` and `test_keras_apps_second_half.py`: the specs are
split over two files so that pytest-xdist (``--dist loadfile``) builds them on
both workers.
"""

import keras

from kerastl.backbones import get_backbone_spec, resolve_blocks
from kerastl.backbones.keras_apps import KERAS_APPLICATION_SPECS

NAMES = [s.name for s in KERAS_APPLICATION_SPECS]
FIRST_HALF, SECOND_HALF = NAMES[0::2], NAMES[1::2]  # alternate: each half has every size


def check_spec_matches_real_model(name):
    """Output width, parameter count and named blocks of `name` equal its real model's."""
    spec = get_backbone_spec(name)
    size = spec.min_input_size
    model = spec.constructor(include_top=False, weights=None, input_shape=(size, size, 3))
    try:
        assert model.output.shape[-1] == spec.feature_dim
        assert model.count_params() == spec.num_params
        blocks = resolve_blocks(spec, model)
        assert len(blocks) == spec.num_blocks
        names = [b.name for b in blocks]
        assert len(set(names)) == len(names)
        # Blocks cover every layer exactly once, in the model's layer order.
        flat = [layer for block in blocks for layer in block.layers]
        assert [id(x) for x in flat] == [id(x) for x in model.layers]
        # Every block holds weights, and the last block ends at the output layer.
        assert all(block.num_params > 0 for block in blocks)
        assert blocks[-1].layers[-1] is model.layers[-1]
        assert spec.default_input_size >= spec.min_input_size
    finally:
        del model
        keras.backend.clear_session()
