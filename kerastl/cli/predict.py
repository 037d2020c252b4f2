"""``kerastl predict MODEL IMAGE...``: top-k labels of images, with any model format."""

from __future__ import annotations

import click
import numpy as np

from kerastl.cli.common import Output, import_kerastl, output_options
from kerastl.cli.models import image_files, open_model, read_image

BATCH = 32


def best_labels(scores: np.ndarray, labels: list, k: int) -> list[list[dict]]:
    """Returns, per row of `scores`, the `k` best ``{"label", "index", "score"}``."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[{"label": labels[j], "index": int(j), "score": float(row[j])} for j in idx]
            for row, idx in zip(scores, order)]


def _text(results: list[dict], regression: bool) -> str:
    lines = []
    for r in results:
        if regression:
            lines.append(f"{r['image']}: {', '.join(f'{v:.4g}' for v in r['predictions'])}")
        else:
            best = ", ".join(f"{p['label']} {p['score']:.3f}" for p in r["top_k"])
            lines.append(f"{r['image']}: {best}")
    return "\n".join(lines)


@click.command("predict")
@click.argument("model", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", "-k", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many of the best labels to show per image. Example: --top-k 1")
@output_options
def predict_command(model, images, *, top_k: int, out: Output):
    """Predict the labels of images with a trained or exported model.

    MODEL is a .keras file, a .tflite file (float or int8, run with the
    TFLite runtime like on a phone), a SavedModel folder, an exported version
    folder (saved_models/NAME/1) or an export folder (its newest version).
    IMAGE is an image file or a folder of them; each is resized to the
    model's input size.

    \b
    Examples:
      kerastl predict runs/flowers/model.keras rose.jpg
      kerastl predict saved_models/flowers/1/model_int8.tflite photos/ --top-k 1
      kerastl predict saved_models/flowers daisy.jpg --json
    """
    files = image_files(images)
    kerastl = import_kerastl(debug=out.debug)
    predictor = open_model(kerastl, model)
    size = predictor.input_shape[:2]
    results = []
    with out.progress(range(0, len(files), BATCH), label="Predicting") as starts:
        for start in starts:
            batch = files[start:start + BATCH]
            scores = predictor.predict(np.stack([read_image(p, size) for p in batch]))
            for path, row in zip(batch, scores):
                results.append((str(path), row))
    regression = predictor.task == "regression"
    records = []
    for path, row in results:
        if regression:
            records.append({"image": path, "predictions": [float(v) for v in row]})
        else:
            records.append({"image": path, "top_k": best_labels(row[None], predictor.labels,
                                                                top_k)[0]})
    quiet = "\n".join(f"{r['image']}\t{r['top_k'][0]['label']}\t{r['top_k'][0]['score']:.4f}"
                      if not regression else f"{r['image']}\t{r['predictions']}"
                      for r in records)
    out.result({"model": str(model), "format": predictor.kind, "predictions": records},
               _text(records, regression), quiet_text=quiet)
