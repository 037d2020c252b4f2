"""`HeadConfig`: the validated options of the task head."""

from __future__ import annotations

import dataclasses

from kerastl._validation import check_float, check_int, check_keys, check_one_of
from kerastl.layers import POOLINGS


@dataclasses.dataclass(frozen=True)
class HeadConfig:
    """Options of the head that `kerastl.build` puts on the backbone.

    Args:
        pooling: ``"avg"`` or ``"max"`` global pooling of the feature map.
        dropout: Dropout rate before each dense layer, in [0, 1).
        hidden_units: Sizes of optional hidden dense layers.
        activation: Activation of the hidden layers.
        name: Name of the head layer.

    Example:
        >>> kerastl.HeadConfig.from_value({"dropout": 0.3}).dropout
        0.3
    """

    pooling: str = "avg"
    dropout: float = 0.2
    hidden_units: tuple = ()
    activation: str = "relu"
    name: str = "head"

    def __post_init__(self):
        check_one_of("head.pooling", self.pooling, POOLINGS)
        check_float("head.dropout", self.dropout, minimum=0.0, maximum=1.0, max_inclusive=False)
        units = self.hidden_units
        if isinstance(units, int):
            units = (units,)
        object.__setattr__(self, "hidden_units",
                           tuple(check_int("head.hidden_units", u, minimum=1) for u in units))
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"`head.name` must be a non-empty string. Received: {self.name!r}")

    @classmethod
    def from_value(cls, value) -> HeadConfig:
        """Makes a `HeadConfig` from None, a dict of options, or a `HeadConfig`."""
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        fields = [f.name for f in dataclasses.fields(cls)]
        return cls(**check_keys("head", value, fields))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
