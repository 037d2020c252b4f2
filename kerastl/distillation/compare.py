"""Teacher, directly trained student and distilled student side by side.

`compare` exports each model as an int8 `.tflite` file with `kerastl.export`
(each at its own input size) and reads back what the export measured on the
same test images: accuracy of the Keras model and of the int8 file, the
file's size and its single-image latency through LiteRT.
"""

from __future__ import annotations

import dataclasses
import os

from kerastl.distillation.teacher import input_size
from kerastl.distillation.views import collect, resized


@dataclasses.dataclass
class ComparisonRow:
    """One model of `compare`.

    Attributes:
        name: The name it was given.
        input_size: ``(height, width)``.
        parameters: Number of weights.
        accuracy: Keras model's accuracy on the test images.
        int8_accuracy: The int8 `.tflite` file's accuracy on them.
        int8_bytes: Size of the int8 `.tflite` file.
        latency_ms: Mean time of one image through the int8 file (LiteRT, this CPU).
        path: The export's version folder.
    """

    name: str
    input_size: tuple
    parameters: int
    accuracy: float | None
    int8_accuracy: float | None
    int8_bytes: int
    latency_ms: float | None
    path: str

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def compare(models: dict, test_data, *, directory, representative_data=None,
            num_calibration_samples: int = 200) -> list[ComparisonRow]:
    """Exports every model as int8 `.tflite` and measures it on the same test images.

    Args:
        models: ``{name: kerastl model}``, e.g. ``{"teacher": t, "student": s,
            "distilled": d}``.
        test_data: Labelled test images (a tuple ``(x, y)``, a dataset of
            ``(images, labels)`` batches or a `kerastl.data.ImageData`'s
            split); resized to each model's input size.
        directory: Folder of the exports (one subfolder per name).
        representative_data: Calibration images (same forms; labels ignored),
            default the test images.
        num_calibration_samples: Images to calibrate on.

    Returns:
        One `ComparisonRow` per model, in order.

    Example:
        >>> rows = kerastl.distillation.compare({"direct": a, "distilled": b}, (x_test, y_test),
        ...                                     directory="saved_models/compare")
        >>> print(kerastl.distillation.compare_table(rows))
    """
    from kerastl.export import export

    test = collect("test_data", test_data, labeled=True)
    calibration = test if representative_data is None else collect(
        "representative_data", representative_data, labeled=True)
    rows = []
    for name, model in models.items():
        size = input_size(model)
        x = resized(test.pixels, size)
        report = export(model, os.path.join(os.fspath(directory), name), formats=("tflite",),
                        quantization=("int8",), eval_data=(x, test.labels),
                        representative_data=resized(calibration.pixels, size),
                        num_calibration_samples=num_calibration_samples, overwrite=True,
                        version="1", verbose=0)
        artifact = report.artifact("model_int8.tflite")
        rows.append(ComparisonRow(name, size, int(model.count_params()),
                                  report.keras.get("accuracy"), artifact.accuracy,
                                  int(artifact.size_bytes), artifact.latency_ms, report.path))
    return rows


def compare_table(rows) -> str:
    """Formats `compare`'s rows as a Markdown table."""
    lines = ["| model | input | params | accuracy | int8 accuracy | int8 size | latency |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.name} | {r.input_size[0]} | {r.parameters / 1e6:.2f} M | "
                     f"{_pct(r.accuracy)} | {_pct(r.int8_accuracy)} | "
                     f"{r.int8_bytes / 1e6:.2f} MB | "
                     + ("-" if r.latency_ms is None else f"{r.latency_ms:.1f} ms") + " |")
    return "\n".join(lines)


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


__all__ = ["ComparisonRow", "compare", "compare_table", "resized"]
