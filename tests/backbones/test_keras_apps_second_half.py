"""Every registered Keras Applications spec checked against its real model (second half).

A file of its own so that pytest-xdist (``--dist loadfile``) builds the two
halves on both workers.
"""

import pytest

from .keras_apps_check import SECOND_HALF, check_spec_matches_real_model


@pytest.mark.parametrize("name", SECOND_HALF)
def test_spec_matches_real_model(name):
    check_spec_matches_real_model(name)
