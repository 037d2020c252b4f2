import numpy as np
import pytest

import kerastl
from kerastl import multitask


def test_build_one_backbone_one_named_head_per_task():
    model = kerastl.build("mobilenet_v2", tasks={"species": 3, "healthy": ["no", "yes"]},
                          input_shape=32, weights=None)
    assert sorted(model.output_names) == ["healthy", "species"]
    heads = multitask.get_heads(model)
    assert list(heads) == ["healthy", "species"]  # Keras orders dict outputs by name
    assert [h.num_outputs for h in heads.values()] == [2, 3]
    assert heads["healthy"].class_names == ["no", "yes"]
    out = model(np.zeros((2, 32, 32, 3), "float32"))
    assert out["species"].shape == (2, 3) and out["healthy"].shape == (2, 2)
    assert len([layer for layer in model.layers if layer.name == "backbone"]) == 1


@pytest.mark.parametrize("kwargs, match", [
    ({"tasks": {"species": 3}}, "at least two"),
    ({"tasks": {"species": 3, "backbone": 2}}, "Task names must be identifiers"),
    ({"tasks": {"species": 3, "healthy": 1}}, "at least 2 classes"),
    ({"tasks": {"a": 3, "b": 2}, "num_classes": 3}, "Pass `tasks` or `num_classes`"),
])
def test_bad_tasks(kwargs, match):
    with pytest.raises(ValueError, match=match):
        kerastl.build("mobilenet_v2", input_shape=32, weights=None, **kwargs)
