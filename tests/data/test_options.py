import pytest

from kerastl.data import options


def test_image_size_pair():
    assert options.image_size_pair(7) == (7, 7)
    assert options.image_size_pair([3, 4]) == (3, 4)
    assert options.image_size_pair(None, allow_none=True) is None
    with pytest.raises(ValueError, match="positive int or a \\(height, width\\) pair of "
                                         "positive ints or None. Received: image_size=-1"):
        options.image_size_pair(-1, allow_none=True)
    with pytest.raises(ValueError, match="Received: image_size=True"):
        options.image_size_pair(True)


def test_split_fractions():
    assert options.split_fractions(None, None) == (0.0, 0.0)
    assert options.split_fractions(0.2, 0.1) == (0.2, 0.1)
    with pytest.raises(ValueError, match="`test_split` must be a number > 0.0 and < 1.0. "
                                         "Received: test_split=1.0"):
        options.split_fractions(None, 1.0)
    with pytest.raises(ValueError, match="must be less than 1"):
        options.split_fractions(0.7, 0.3)


def test_seed_cache_flag_batch_size():
    assert options.seed_int(None) is None and options.seed_int(5) == 5
    with pytest.raises(ValueError, match="`seed` must be an integer >= 0. Received: seed=-1"):
        options.seed_int(-1)
    assert options.cache_option(True) is True and options.cache_option("/tmp/c") == "/tmp/c"
    with pytest.raises(ValueError, match="Received: cache=None"):
        options.cache_option(None)
    assert options.flag("shuffle", False) is False
    with pytest.raises(ValueError, match="`download` must be True or False"):
        options.flag("download", "yes")
    assert options.batch_size_int(4) == 4
    with pytest.raises(ValueError, match="Received: batch_size=2.5"):
        options.batch_size_int(2.5)
