"""`kerastl.SearchSpace`: what `kerastl.tune` searches, validated up front.

Each entry is ``None`` (not searched: `kerastl.fit`'s or `kerastl.build`'s
default is used), one value (fixed), a ``tuple`` of two numbers (a range:
log scale for learning rates, linear for ``dropout`` and ``layer_decay``) or
a ``list`` of values (a choice). ``trainable_blocks`` and ``recipe`` are always
choices, given as a list or a tuple. As plain data (`SearchSpace.to_dict`,
`SearchSpace.from_dict`, YAML/JSON configs, which have no tuples) a range is
written ``{"range": [low, high]}`` and a list is always a choice.

keras-tuner needs the values of one ``hp.Choice`` to share a type, so the
unfreeze depth is stored in the trials as an int where ``-1`` means
``"all"`` (`ALL_BLOCKS`); `SearchSpace.decode` turns it back into ``"all"``.
"""

from __future__ import annotations

from collections.abc import Mapping

from kerastl._validation import check_float, check_keys, check_one_of
from kerastl.freezing import ALL, check_trainable_blocks
from kerastl.training.recipes import RECIPES as FIT_RECIPES

ALL_BLOCKS = -1
RANGE_KEY = "range"
# kerastl.fit's recipes but "auto" (which picks one by data size): a search tries them.
RECIPES = tuple(r for r in FIT_RECIPES if r != "auto")
RATE_PARAMS = ("learning_rate", "backbone_learning_rate")
UNIT_PARAMS = ("dropout", "layer_decay")
PARAMS = ("trainable_blocks", "learning_rate", "backbone_learning_rate", "dropout", "recipe",
          "layer_decay")
_DEFAULT_DEPTHS = (0, 2, 4, ALL)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(name, value, *, rate: bool, item: str = ""):
    label = f"{name}{item}"
    if rate:
        if not _is_number(value) or value <= 0:
            raise ValueError(f"`{name}` must be a positive number, a (low, high) range of "
                             f"positive numbers or a list of them. Received: {label}={value!r}")
        return float(value)
    if name == "dropout":
        return check_float(label, value, minimum=0.0, maximum=1.0, max_inclusive=False)
    return check_float(label, value, minimum=0.0, maximum=1.0, min_inclusive=False)


def _numeric_entry(name, value, *, rate: bool):
    """Returns ('fixed', v) | ('range', (lo, hi)) | ('choice', [..]) | None."""
    if value is None:
        return None
    if isinstance(value, tuple):
        if len(value) != 2:
            raise ValueError(f"`{name}` as a tuple must be a (low, high) range of 2 numbers; "
                             f"use a list for a choice of values. Received: {name}={value!r}")
        low = _check_number(name, value[0], rate=rate, item="[0]")
        high = _check_number(name, value[1], rate=rate, item="[1]")
        if low > high:
            raise ValueError(f"`{name}` must be a (low, high) range with low <= high. "
                             f"Received: {name}={value!r}")
        return ("fixed", low) if low == high else ("range", (low, high))
    if isinstance(value, list):
        if not value:
            raise ValueError(f"`{name}` must not be an empty list. Received: {name}={value!r}")
        items = [_check_number(name, v, rate=rate, item=f"[{i}]") for i, v in enumerate(value)]
        items = sorted(set(items))
        return ("fixed", items[0]) if len(items) == 1 else ("choice", items)
    return "fixed", _check_number(name, value, rate=rate)


def _as_choices(name, value):
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError(f"`{name}` must list at least one value. Received: {name}={value!r}")
        return list(value)
    return [value]


def _depth_choices(value):
    items = []
    for i, v in enumerate(_as_choices("trainable_blocks", value)):
        if v == ALL:
            v = ALL
        elif not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError("`trainable_blocks` values must be integers >= 0 or 'all'. "
                             f"Received: trainable_blocks[{i}]={v!r}")
        if v not in items:
            items.append(v)
    return sorted(items, key=lambda v: float("inf") if v == ALL else v)


class SearchSpace:
    """The hyperparameters `kerastl.tune` searches, with validated ranges and choices.

    Args:
        trainable_blocks: Unfreeze depths to try: ints >= 0 and/or ``"all"``.
        learning_rate: Learning rate of the head (and of the backbone when
            `backbone_learning_rate` is None): a number, a ``(low, high)``
            range searched on a log scale, or a list of choices.
        backbone_learning_rate: Learning rate of the unfrozen backbone blocks
            (same forms as `learning_rate`), or None for `kerastl.fit`'s default.
        dropout: Dropout of the head: a number in [0, 1), a linear
            ``(low, high)`` range, a list, or None for the head's default.
        recipe: Training recipes of `kerastl.fit` to try (``"feature_extraction"``,
            ``"fine_tune"``, ``"two_stage"``, ``"progressive"``).
        layer_decay: Per-block learning-rate decay in (0, 1] (same forms as
            `dropout`), or None (not searched).

    Example:
        >>> space = kerastl.SearchSpace(trainable_blocks=[0, 4, "all"],
        ...                             learning_rate=(1e-4, 1e-2), dropout=[0.0, 0.3])
        >>> space.to_dict()["trainable_blocks"]
        [0, 4, 'all']
    """

    def __init__(self, *, trainable_blocks=_DEFAULT_DEPTHS, learning_rate=(1e-4, 1e-2),
                 backbone_learning_rate=(1e-6, 1e-3), dropout=(0.0, 0.5),
                 recipe=("two_stage",), layer_decay=None):
        self.trainable_blocks = _depth_choices(trainable_blocks)
        recipes = _as_choices("recipe", recipe)
        for i, r in enumerate(recipes):
            check_one_of(f"recipe[{i}]" if len(recipes) > 1 else "recipe", r, RECIPES)
        self.recipe = list(dict.fromkeys(recipes))
        self._numeric = {}
        for name, value in (("learning_rate", learning_rate),
                            ("backbone_learning_rate", backbone_learning_rate),
                            ("dropout", dropout), ("layer_decay", layer_decay)):
            self._numeric[name] = _numeric_entry(name, value, rate=name in RATE_PARAMS)

    @classmethod
    def from_dict(cls, config: Mapping) -> "SearchSpace":
        """Builds a space from a dict (a YAML/JSON config, or `to_dict`'s output).

        A range is ``{"range": [low, high]}`` (JSON has no tuples; a tuple is
        accepted too); a list is a choice, whatever its length. Unknown keys raise.

        Example:
            >>> space = kerastl.SearchSpace.from_dict(
            ...     {"learning_rate": {"range": [1e-4, 1e-2]}, "dropout": [0.0, 0.3]})
            >>> print(space.describe().splitlines()[2:5:2])
            ['learning_rate: log range [0.0001, 0.01]', 'dropout: choice [0.0, 0.3]']
        """
        config = check_keys("search_space", config, PARAMS)
        for name in RATE_PARAMS + UNIT_PARAMS:
            value = config.get(name)
            if isinstance(value, Mapping):
                entry = check_keys(f"search_space['{name}']", value, (RANGE_KEY,))
                bounds = entry.get(RANGE_KEY)
                if not isinstance(bounds, (list, tuple)) or len(bounds) != 2:
                    raise ValueError(
                        f"`search_space['{name}']` must be {{'range': [low, high]}} with two "
                        f"numbers. Received: search_space['{name}']={dict(value)!r}")
                config[name] = tuple(bounds)
        return cls(**config)

    @classmethod
    def default_for(cls, backbone, **overrides) -> "SearchSpace":
        """Returns a space whose depth choices suit `backbone`'s block count.

        The depths are 0 (feature extraction), about 10% and 25% of the
        blocks, and ``"all"``; TF Hub backbones get ``[0, "all"]``.

        Args:
            backbone: A registry name, ``"hub:<handle>"`` or a `kerastl.BackboneSpec`.
            **overrides: Other `SearchSpace` arguments (checked by its signature).

        Returns:
            A `SearchSpace`.

        Example:
            >>> kerastl.SearchSpace.default_for("mobilenet_v2").trainable_blocks
            [0, 2, 4, 'all']
        """
        spec = _spec_of(backbone)
        if spec.source == "hub" or spec.num_blocks < 1:
            depths = [0, ALL]
        else:
            n = spec.num_blocks
            depths = sorted({0, max(1, round(0.1 * n)), max(2, round(0.25 * n))})
            depths = [d for d in depths if d < n] + [ALL]
        overrides.setdefault("trainable_blocks", depths)
        return cls(**overrides)

    def check_backbone(self, backbone) -> "SearchSpace":
        """Raises if a depth exceeds `backbone`'s block count (or a Hub backbone's 0/'all').

        Args:
            backbone: A registry name, ``"hub:<handle>"`` or a `kerastl.BackboneSpec`.

        Returns:
            The space itself.
        """
        spec = _spec_of(backbone)
        if spec.source == "custom" and spec.num_blocks < 1:
            return self
        for value in self.trainable_blocks:
            check_trainable_blocks(value, spec, spec.num_blocks)
        return self

    def declare(self, hp) -> None:
        """Adds this space's entries to a `keras_tuner.HyperParameters`."""
        depths = [ALL_BLOCKS if v == ALL else v for v in self.trainable_blocks]
        if len(depths) > 1:
            hp.Choice("trainable_blocks", depths, ordered=False)
        else:
            hp.Fixed("trainable_blocks", depths[0])
        if len(self.recipe) > 1:
            hp.Choice("recipe", self.recipe)
        else:
            hp.Fixed("recipe", self.recipe[0])
        for name, entry in self._numeric.items():
            if entry is None:
                continue
            kind, value = entry
            if kind == "fixed":
                hp.Fixed(name, value)
            elif kind == "choice":
                hp.Choice(name, value)
            else:
                hp.Float(name, value[0], value[1],
                         sampling="log" if name in RATE_PARAMS else "linear")

    @staticmethod
    def decode(values: Mapping) -> dict:
        """Returns trial values as `kerastl.fit`/`kerastl.build` arguments.

        Drops keras-tuner's own ``tuner/...`` entries and turns the depth
        ``-1`` back into ``"all"``.
        """
        out = {k: v for k, v in values.items() if not str(k).startswith("tuner/")}
        if out.get("trainable_blocks") == ALL_BLOCKS:
            out["trainable_blocks"] = ALL
        return out

    def to_dict(self) -> dict:
        """Returns the space as plain data: ranges as ``{"range": [low, high]}``, choices as lists.

        `from_dict` reads it back to an equal space.
        """
        out = {"trainable_blocks": list(self.trainable_blocks), "recipe": list(self.recipe)}
        for name, entry in self._numeric.items():
            if entry is None:
                out[name] = None
            elif entry[0] == "range":
                out[name] = {RANGE_KEY: list(entry[1])}
            else:
                out[name] = list(entry[1]) if entry[0] == "choice" else entry[1]
        return out

    def describe(self) -> str:
        """Returns one line per entry: name, kind and values."""
        lines = [f"trainable_blocks: choice {self.trainable_blocks}",
                 f"recipe: choice {self.recipe}"]
        for name, entry in self._numeric.items():
            if entry is None:
                lines.append(f"{name}: default")
            elif entry[0] == "range":
                scale = "log" if name in RATE_PARAMS else "linear"
                lines.append(f"{name}: {scale} range [{entry[1][0]:g}, {entry[1][1]:g}]")
            else:
                lines.append(f"{name}: {entry[0]} {entry[1]}")
        return "\n".join(lines)

    def __eq__(self, other) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    __hash__ = None

    def __repr__(self) -> str:
        shown = self.to_dict()
        for name, entry in self._numeric.items():
            if entry is not None and entry[0] == "range":
                shown[name] = tuple(entry[1])
        args = ", ".join(f"{k}={v!r}" for k, v in shown.items())
        return f"SearchSpace({args})"


def _spec_of(backbone):
    from kerastl.backbones.spec import BackboneSpec
    from kerastl.accessors import spec_for_name

    if isinstance(backbone, BackboneSpec):
        return backbone
    if isinstance(backbone, str):
        if not backbone.startswith("hub:"):
            from kerastl.backbones.registry import get_backbone_spec

            return get_backbone_spec(backbone)
        return spec_for_name(backbone)
    raise TypeError("`backbone` must be a registry name, 'hub:<handle>' or a "
                    f"kerastl.BackboneSpec. Received: backbone={backbone!r}")


def as_search_space(value, backbone) -> SearchSpace:
    """Returns `value` (None, a dict or a `SearchSpace`) as a space checked against `backbone`."""
    if value is None:
        space = SearchSpace.default_for(backbone)
    elif isinstance(value, SearchSpace):
        space = value
    elif isinstance(value, Mapping):
        space = SearchSpace.from_dict(value)
    else:
        raise TypeError("`search_space` must be a kerastl.SearchSpace, a dict or None. "
                        f"Received: search_space={value!r}")
    return space.check_backbone(backbone)
