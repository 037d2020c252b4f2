"""`ExportReport`: what `kerastl.export` wrote and how each artifact measured up."""

from __future__ import annotations

import dataclasses
import json

from kerastl._json import json_default

_COLUMNS = (  # (field, header, format)
    ("name", "artifact", "{}"),
    ("size_bytes", "bytes", "{:,}"),
    ("size_ratio", "vs float32", "{:.3f}x"),
    ("accuracy", "accuracy", "{:.4f}"),
    ("mae", "mae", "{:.4g}"),
    ("agreement", "agreement", "{:.4f}"),
    ("max_abs_diff", "max |diff|", "{:.2e}"),
    ("latency_ms", "ms/image", "{:.2f}"),
)


@dataclasses.dataclass
class ArtifactReport:
    """One exported artifact and its verification results.

    Args:
        name: File or folder name (``"model_int8.tflite"``, ``"saved_model"``).
        format: ``"saved_model"``, ``"keras"`` or ``"tflite"``.
        quantization: TFLite quantization, None for other formats.
        size_bytes: Size on disk (a folder: all its files).
        sha256: SHA-256 of the file (a folder: of its file listing, see the manifest).
        size_ratio: `size_bytes` over the float32 `.tflite` size (None without it).
        accuracy: Accuracy on `eval_data` (classification tasks).
        mae: Mean absolute error on `eval_data` (regression).
        agreement: Fraction of predictions equal to the Keras model's.
        max_abs_diff: Largest absolute output difference from the Keras model.
        latency_ms: Mean CPU time per image (batch of one).
    """

    name: str
    format: str
    quantization: str | None
    size_bytes: int
    sha256: str
    size_ratio: float | None = None
    accuracy: float | None = None
    mae: float | None = None
    agreement: float | None = None
    max_abs_diff: float | None = None
    latency_ms: float | None = None

    def to_dict(self) -> dict:
        """Returns the fields as a JSON-friendly dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ExportReport:
    """The result of `kerastl.export`.

    Args:
        path: The version folder that was written.
        version: Its name.
        task: The model's task.
        class_names: Output names (``labels.txt``).
        artifacts: One `ArtifactReport` per artifact.
        keras: Metrics of the Keras model on the same images (the reference).
        check_data: Which images the comparison used: ``"eval_data"``,
            ``"representative_data"`` or ``"random"``.
        num_check_images: How many.
        runtime: Module that ran the `.tflite` files (``"ai_edge_litert"``).

    Example:
        >>> report = kerastl.export(model, "saved_models", representative_data=train_ds)
        >>> print(report)
        >>> report.artifact("model_int8.tflite").size_ratio
    """

    path: str
    version: str
    task: str
    class_names: list
    artifacts: list
    keras: dict
    check_data: str
    num_check_images: int
    runtime: str

    def artifact(self, name: str) -> ArtifactReport:
        """Returns the artifact called `name` (e.g. ``"model_int8.tflite"``)."""
        for artifact in self.artifacts:
            if artifact.name == name:
                return artifact
        raise KeyError(f"No artifact {name!r} in this export; artifacts: "
                       f"{', '.join(a.name for a in self.artifacts)}")

    def to_dict(self) -> dict:
        """Returns the report as a JSON-friendly dict."""
        out = dataclasses.asdict(self)
        out["artifacts"] = [a.to_dict() for a in self.artifacts]
        return out

    def to_json(self, *, indent: int | None = 2) -> str:
        """Returns the report as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=json_default)

    def _rows(self) -> tuple[list, list]:
        keras_row = {"name": "keras (reference)", **self.keras}
        records = [keras_row] + [a.to_dict() for a in self.artifacts]
        columns = [c for c in _COLUMNS
                   if c[0] == "name" or any(r.get(c[0]) is not None for r in records)]
        rows = [[("-" if r.get(f) is None else fmt.format(r[f])) for f, _, fmt in columns]
                for r in records]
        return [h for _, h, _ in columns], rows

    def __str__(self) -> str:
        headers, rows = self._rows()
        widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
        line = "  ".join("{:<%d}" % w if i == 0 else "{:>%d}" % w for i, w in enumerate(widths))
        out = [f"kerastl export {self.version} -> {self.path}",
               f"compared on {self.num_check_images} images from {self.check_data}; "
               f"TFLite runtime: {self.runtime}",
               line.format(*headers), line.format(*("-" * w for w in widths))]
        out += [line.format(*row) for row in rows]
        return "\n".join(out)
