"""`PeftConfig`: which parameter-efficient method, at which rank, on which named blocks."""

from __future__ import annotations

import dataclasses

from kerastl._validation import check_float, check_int, check_keys, check_one_of

METHODS = ("lora", "bitfit", "bn_affine")
ALL_BLOCKS = "all"
DEFAULT_RANK = 8


@dataclasses.dataclass(frozen=True)
class PeftConfig:
    """A parameter-efficient fine-tuning setting (`kerastl.peft.apply`, ``kerastl.fit(peft=)``).

    Attributes:
        method: ``"lora"`` (low-rank updates of every Dense, EinsumDense and
            Conv1D/2D/3D kernel in the selected blocks; in MobileNet and
            EfficientNet these are the 1x1 convolutions and the stem),
            ``"bitfit"`` (bias vectors only: layer biases and BatchNormalization
            betas) or ``"bn_affine"`` (BatchNormalization scale and offset only).
        rank: LoRA rank (``"lora"`` only), at least 1 and at most the smallest
            input or output size of a targeted kernel.
        alpha: LoRA scale numerator: the update is ``alpha / rank * A @ B``
            (default: `rank`, a scale of 1; ``"lora"`` only).
        blocks: Where the method applies, in the backbone's named blocks
            (`kerastl.get_blocks`): ``"all"``, the number of top blocks, or a
            list of block names.

    Example:
        >>> kerastl.peft.PeftConfig("lora", rank=4, blocks=4).scale
        1.0
    """

    method: str
    rank: int | None = None
    alpha: float | None = None
    blocks: int | str | tuple = ALL_BLOCKS

    def __post_init__(self):
        check_one_of("method", self.method, METHODS)
        if self.method != "lora":
            for name in ("rank", "alpha"):
                if getattr(self, name) is not None:
                    raise ValueError(f"`{name}` is a LoRA setting; method={self.method!r} has "
                                     "no low-rank update. Received: "
                                     f"{name}={getattr(self, name)!r}")
        else:
            rank = DEFAULT_RANK if self.rank is None else check_int("rank", self.rank, minimum=1)
            object.__setattr__(self, "rank", rank)
            if self.alpha is not None:
                object.__setattr__(self, "alpha", check_float("alpha", self.alpha, minimum=0.0,
                                                              min_inclusive=False))
        object.__setattr__(self, "blocks", _check_blocks(self.blocks))

    @property
    def scale(self) -> float | None:
        """``alpha / rank`` of a LoRA setting (None for the other methods)."""
        if self.method != "lora":
            return None
        return float(self.alpha if self.alpha is not None else self.rank) / self.rank

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if isinstance(self.blocks, tuple):
            out["blocks"] = list(self.blocks)
        return out

    @classmethod
    def from_value(cls, value) -> PeftConfig:
        """Returns a `PeftConfig` from a config, a method name or a dict of the fields.

        Example:
            >>> kerastl.peft.PeftConfig.from_value({"method": "lora", "rank": 4}).rank
            4
        """
        if isinstance(value, PeftConfig):
            return value
        if isinstance(value, str):
            return cls(check_one_of("peft", value, METHODS))
        if isinstance(value, dict):
            fields = check_keys("peft", value, ("method", "rank", "alpha", "blocks"))
            if "method" not in fields:
                raise ValueError("`peft` must name its `method` (one of "
                                 f"{', '.join(map(repr, METHODS))}). Received: peft={value!r}")
            return cls(**fields)
        raise ValueError("`peft` must be one of 'lora', 'bitfit', 'bn_affine', a dict of "
                         "kerastl.peft.PeftConfig fields, or a PeftConfig. "
                         f"Received: peft={value!r}")


def _check_blocks(blocks):
    if blocks == ALL_BLOCKS:
        return blocks
    if isinstance(blocks, (list, tuple)):
        names = tuple(blocks)
        if not names or not all(isinstance(n, str) and n for n in names):
            raise ValueError("`blocks` must be 'all', the number of top blocks, or a non-empty "
                             f"list of block names. Received: blocks={blocks!r}")
        return names
    if isinstance(blocks, str):
        return (blocks,)
    return check_int("blocks", blocks, minimum=1, extra=" (top blocks), 'all' or block names")


__all__ = ["ALL_BLOCKS", "DEFAULT_RANK", "METHODS", "PeftConfig"]
