"""`AdaptReport`: what `kerastl.adapt.fit` did and what it chose."""

from __future__ import annotations

import dataclasses
import json

from kerastl._json import json_default


@dataclasses.dataclass
class Candidate:
    """One adaptation tried by `kerastl.adapt.fit`.

    Attributes:
        method: The method's name.
        source_validation_accuracy: Accuracy on the source validation split
            after adapting (None without one).
        kept: Whether the model ends with this adaptation.
        reason: Why it was kept or rejected.
        seconds: Wall time of the method.
        details: What the method returned (strengths, loss histories, ...).
    """

    method: str
    source_validation_accuracy: float | None
    kept: bool
    reason: str
    seconds: float
    details: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class AdaptReport:
    """What `kerastl.adapt.fit` did.

    Attributes:
        requested: The method asked for (``"auto"`` or a method name).
        method: The method the model ends with (``"source_only"``: no adaptation).
        adaptation_needed: False when the shift report found no shift.
        message: One line saying what was chosen and why.
        shift: The `kerastl.adapt.ShiftReport` of the source-trained model.
        source_fit: The `kerastl.training.FitReport` of the source training, or None.
        source_only_validation_accuracy: Source validation accuracy before
            adapting (None without source validation data).
        candidates: The `Candidate` of every method tried, in order.
        seconds: Wall time of the whole call.
        backbone_batches: Image batches run through the backbone by the
            feature cache (source training included).

    Example:
        >>> report = kerastl.adapt.fit(model, data.train, "phone_photos/",
        ...                            source_validation=data.validation)
        >>> print(report)
        >>> report.method
        'coral'
    """

    requested: str
    method: str = "source_only"
    adaptation_needed: bool = True
    message: str = ""
    shift: object = None
    source_fit: object = None
    source_only_validation_accuracy: float | None = None
    candidates: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0
    backbone_batches: int = 0

    @property
    def source_validation_accuracy(self) -> float | None:
        """Source validation accuracy of the returned model."""
        for c in self.candidates:
            if c.kept:
                return c.source_validation_accuracy
        return self.source_only_validation_accuracy

    def to_dict(self) -> dict:
        return {
            "requested": self.requested, "method": self.method,
            "adaptation_needed": self.adaptation_needed, "message": self.message,
            "shift": None if self.shift is None else self.shift.to_dict(),
            "source_fit": None if self.source_fit is None else self.source_fit.to_dict(),
            "source_only_validation_accuracy": self.source_only_validation_accuracy,
            "source_validation_accuracy": self.source_validation_accuracy,
            "candidates": [dataclasses.asdict(c) for c in self.candidates],
            "seconds": self.seconds, "backbone_batches": self.backbone_batches}

    def to_json(self, **kwargs) -> str:
        return json.dumps(self.to_dict(), **{"default": json_default, **kwargs})

    def __str__(self) -> str:
        lines = [f"kerastl.adapt.fit: method {self.requested!r} -> {self.method!r}"]
        if self.shift is not None:
            lines.append(f"  shift: {self.shift.verdict}")
        base = self.source_only_validation_accuracy
        rows = [("method", "source val acc", "kept", "seconds", "reason"),
                ("source_only", "-" if base is None else f"{base:.4f}",
                 "yes" if self.method == "source_only" else "no", "-", "the source-trained model")]
        for c in self.candidates:
            acc = c.source_validation_accuracy
            rows.append((c.method, "-" if acc is None else f"{acc:.4f}",
                         "yes" if c.kept else "no", f"{c.seconds:.1f}", c.reason))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for row in rows:
            lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
        lines.append(f"  {self.message}; total {self.seconds:.1f} s")
        return "\n".join(lines)


__all__ = ["AdaptReport", "Candidate"]
