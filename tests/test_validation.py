import numpy as np
import pytest

from kerastl._validation import check_bool, check_float, check_int, check_keys, check_one_of


def test_check_one_of_message_form_and_suggestion():
    with pytest.raises(ValueError) as err:
        check_one_of("recipe", "two-stage", ("two_stage", "fine_tune"))
    msg = str(err.value)
    assert msg.startswith("`recipe` must be one of 'two_stage', 'fine_tune'.")
    assert "Did you mean 'two_stage'?" in msg and msg.endswith("Received: recipe='two-stage'")


def test_check_int():
    assert check_int("k", np.int64(3), minimum=0) == 3
    with pytest.raises(ValueError, match=r"^`trainable_blocks` must be an integer between 0 and "
                                         r"17 or 'all'. Received: trainable_blocks=20$"):
        check_int("trainable_blocks", 20, minimum=0, maximum=17, extra=" or 'all'")
    for bad in (True, 1.5, "3"):
        with pytest.raises(ValueError):
            check_int("k", bad)


def test_check_float_bounds():
    assert check_float("lr", 1e-3, minimum=0, min_inclusive=False) == 1e-3
    with pytest.raises(ValueError, match="Received: lr=0"):
        check_float("lr", 0, minimum=0, min_inclusive=False)
    with pytest.raises(ValueError):
        check_float("lr", "0.1")


def test_check_keys_suggests():
    with pytest.raises(ValueError, match=r"'droput' \(did you mean 'dropout'\?\)"):
        check_keys("head", {"droput": 0.1}, ("dropout", "pooling"))
    with pytest.raises(TypeError):
        check_keys("head", [("dropout", 0.1)], ("dropout",))
    assert check_keys("head", None, ("dropout",)) == {}


def test_check_bool_accepts_only_bools():
    assert check_bool("overwrite", True) is True and check_bool("overwrite", False) is False
    for bad in (1, 0, "yes", "False", None, np.bool_(True)):
        with pytest.raises(ValueError, match=r"^`overwrite` must be True or False. "
                                             rf"Received: overwrite={bad!r}$".replace("(", r"\(")
                           .replace(")", r"\)")):
            check_bool("overwrite", bad)

