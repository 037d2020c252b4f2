"""Backbone candidates of `kerastl.rank_backbones`: what to build, parsed from text.

A candidate is a backbone name as `kerastl.build` takes it (a registry name,
``"hub:<handle>"``, ``"kerashub:<preset>"``), optionally with constructor
options in parentheses and an input size after ``@``::

    mobilenet_v2@160
    mobilenet(alpha=0.25)@128
    hub:/models/mobilenet_v2_100_224_feature_vector
"""

from __future__ import annotations

import dataclasses
import json
import re

from kerastl._validation import check_int

_TEXT = re.compile(r"^(?P<name>.+?)(?:\((?P<kwargs>[^()]*)\))?(?:@(?P<size>\d+))?$")
WEIGHTS = ("imagenet", None)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One backbone to score.

    Args:
        backbone: The `kerastl.build` backbone name.
        image_size: Input side; None: the ranking's `image_size` or the data's.
        backbone_kwargs: Constructor options (``{"alpha": 0.25}``).
        weights: ``"imagenet"`` (pretrained) or None (random initialisation).
        label: Name in the table (default: the text form).

    Example:
        >>> kerastl.ranking.Candidate.parse("mobilenet(alpha=0.25)@128").backbone_kwargs
        {'alpha': 0.25}
    """

    backbone: str
    image_size: int | None = None
    backbone_kwargs: dict = dataclasses.field(default_factory=dict)
    weights: str | None = "imagenet"
    label: str | None = None

    def __post_init__(self):
        if not isinstance(self.backbone, str) or not self.backbone.strip():
            raise ValueError("`backbone` must be a non-empty backbone name. "
                             f"Received: backbone={self.backbone!r}")
        if self.image_size is not None:
            check_int("image_size", self.image_size, minimum=1)
        if self.weights not in WEIGHTS:
            raise ValueError("`weights` must be 'imagenet' or None for a ranking candidate. "
                             f"Received: weights={self.weights!r}")
        if not isinstance(self.backbone_kwargs, dict):
            raise TypeError("`backbone_kwargs` must be a dict. "
                            f"Received: backbone_kwargs={self.backbone_kwargs!r}")

    @property
    def name(self) -> str:
        """The label, or the candidate's text form (``mobilenet(alpha=0.25)@128``)."""
        if self.label:
            return self.label
        text = self.backbone
        if self.backbone_kwargs:
            text += "(" + ",".join(f"{k}={v}" for k, v in self.backbone_kwargs.items()) + ")"
        if self.image_size is not None:
            text += f"@{self.image_size}"
        return text + (" (random init)" if self.weights is None else "")

    def key(self) -> tuple:
        """What makes two candidates the same (the duplicate check)."""
        return (self.backbone.strip().lower().replace("-", "_"), self.image_size,
                json.dumps(self.backbone_kwargs, sort_keys=True, default=str), self.weights)

    def with_size(self, size: int) -> Candidate:
        return dataclasses.replace(self, image_size=size, label=self.label or None)

    @classmethod
    def parse(cls, text: str) -> Candidate:
        """Parses ``name[(key=value,...)][@size]``; values are JSON (else strings)."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError("A candidate must be a non-empty backbone name. "
                             f"Received: candidate={text!r}")
        match = _TEXT.match(text.strip())
        if match is None:
            raise ValueError(f"A candidate must read 'name', 'name@size' or "
                             f"'name(key=value,...)@size'. Received: candidate={text!r}")
        kwargs = {}
        for item in filter(None, (match["kwargs"] or "").split(",")):
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"Candidate options must be key=value pairs. "
                                 f"Received: candidate={text!r}")
            kwargs[key.strip()] = _value(value.strip())
        size = int(match["size"]) if match["size"] else None
        return cls(match["name"].strip(), size, kwargs)


def _value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def split_candidates(text: str) -> list[str]:
    """Splits a comma-separated candidate list (commas inside parentheses kept)."""
    out, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            out.append(current)
            current = ""
        else:
            current += char
    out.append(current)
    return [c.strip() for c in out if c.strip()]


def as_candidates(candidates) -> list[Candidate]:
    """Returns `candidates` (names, text forms or `Candidate`s) as `Candidate`s, checked.

    Raises:
        ValueError: An empty list, or a candidate given twice.
    """
    if isinstance(candidates, (str, Candidate)):
        candidates = split_candidates(candidates) if isinstance(candidates, str) else [candidates]
    items = [c if isinstance(c, Candidate) else Candidate.parse(c) for c in candidates]
    if not items:
        raise ValueError("`candidates` must name at least one backbone. Received: candidates=[]")
    seen = {}
    for item in items:
        if item.key() in seen:
            raise ValueError(f"`candidates` must not repeat a backbone: "
                             f"{seen[item.key()].name!r} is given twice (as {item.name!r}). "
                             f"Received: candidates={[c.name for c in items]}")
        seen[item.key()] = item
    return items


__all__ = ["Candidate", "as_candidates", "split_candidates"]
