"""`BackboneRanking`: the table `kerastl.rank_backbones` returns."""

from __future__ import annotations

import dataclasses

METRIC_LABELS = {"logme": "LogME", "linear_probe": "-CV log-loss"}


class NegativeTransferWarning(UserWarning):
    """No pretrained candidate clearly beats the random-initialised reference."""


@dataclasses.dataclass
class RankedBackbone:
    """One row of a ranking.

    Attributes:
        name: The candidate's label.
        backbone: Its `kerastl.build` name.
        image_size: Input side it was scored at.
        score: The metric's score (higher is better).
        feature_seconds: Time to get its features (building it and the
            backbone pass; near 0 when the feature cache had them).
        score_seconds: Time to compute the score from the features.
        num_params: Backbone parameters.
        tflite_bytes: Expected float32 ``.tflite`` size (4 bytes a parameter,
            backbone and a linear head).
        tflite_int8_bytes: Expected int8 ``.tflite`` size (1 byte a parameter).
        reference: Whether this is the random-initialised reference.
        negative_transfer: A pretrained candidate that does not beat the
            reference by the ranking's margin.
        backbone_batches: Image batches its features took through the backbone.
        num_examples: Labelled examples its score was computed on.
    """

    name: str
    backbone: str
    image_size: int
    score: float
    feature_seconds: float
    score_seconds: float
    num_params: int
    tflite_bytes: int
    tflite_int8_bytes: int
    reference: bool = False
    negative_transfer: bool = False
    backbone_batches: int = 0
    num_examples: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class BackboneRanking:
    """Candidates sorted best first, with the random-initialised reference among them.

    Attributes:
        rows: `RankedBackbone` rows, best score first.
        metric: ``"logme"`` or ``"linear_probe"``.
        margin: How much a pretrained candidate must beat the reference by.
        num_examples: Labelled examples the scores were computed on.
        warnings: Human-readable warnings (negative transfer).

    Example:
        >>> ranking = kerastl.rank_backbones(data, ["mobilenet_v2", "mobilenet"])
        >>> ranking.best.name
        'mobilenet_v2'
    """

    rows: list
    metric: str
    margin: float
    num_examples: int
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def best(self) -> RankedBackbone | None:
        """The best pretrained candidate (never the reference)."""
        return next((r for r in self.rows if not r.reference), None)

    @property
    def reference(self) -> RankedBackbone | None:
        return next((r for r in self.rows if r.reference), None)

    @property
    def names(self) -> list[str]:
        """Candidate names, best first (the reference left out)."""
        return [r.name for r in self.rows if not r.reference]

    @property
    def seconds(self) -> float:
        return float(sum(r.feature_seconds + r.score_seconds for r in self.rows))

    def to_dict(self) -> dict:
        return {"metric": self.metric, "margin": self.margin, "num_examples": self.num_examples,
                "warnings": list(self.warnings), "seconds": self.seconds,
                "rows": [r.to_dict() for r in self.rows]}

    def __str__(self) -> str:
        label = METRIC_LABELS.get(self.metric, self.metric)
        header = (f"{'#':>2}  {'backbone':<34} {'size':>4} {label:>12} {'features s':>10} "
                  f"{'params':>11} {'tflite MB':>9} {'int8 MB':>7}  note")
        lines = [f"Backbone ranking ({label}, {self.num_examples} examples; higher is better)",
                 header, "-" * len(header)]
        for i, r in enumerate(self.rows, 1):
            note = ("random-init reference" if r.reference else
                    "negative transfer?" if r.negative_transfer else "")
            lines.append(f"{i:>2}  {r.name[:34]:<34} {r.image_size:>4} {r.score:>12.4f} "
                         f"{r.feature_seconds:>10.1f} {r.num_params:>11,} "
                         f"{r.tflite_bytes / 2**20:>9.2f} {r.tflite_int8_bytes / 2**20:>7.2f}"
                         f"  {note}".rstrip())
        lines.extend(f"warning: {w}" for w in self.warnings)
        return "\n".join(lines)


__all__ = ["BackboneRanking", "NegativeTransferWarning", "RankedBackbone"]
