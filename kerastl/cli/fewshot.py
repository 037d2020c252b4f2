"""``kerastl fewshot``: prototype classifiers and few-shot evaluation from a shell.

* ``kerastl fewshot build SUPPORT --out model.keras [--export DIR]``: a
  prototype model from a folder with one subfolder of photos per class.
* ``kerastl fewshot evaluate DATA --ways 5 --shots 1``: mean accuracy and 95%
  interval over N-way K-shot episodes.

Thin over `kerastl.fewshot.build`, `kerastl.fewshot.export` and
`kerastl.fewshot.evaluate`; TensorFlow is imported only when a command runs.
"""

from __future__ import annotations

import click

from kerastl.cli.common import Output, comma_list, import_kerastl, output_options
from kerastl.cli.config import WeightsType

_METRICS = ("cosine", "euclidean", "mahalanobis")  # kerastl.fewshot.layers.METRICS, TF-free
_METHODS = ("prototypes", "baseline++", "logistic")  # kerastl.fewshot.episodes.METHODS


def _backbone_options(func):
    for option in reversed([
        click.option("--backbone", default="mobilenet_v2", show_default=True,
                     help="Backbone name (see `kerastl backbones`) or hub:<handle or path>. "
                          "Example: --backbone efficientnet_b0"),
        click.option("--image-size", type=click.IntRange(min=1), default=224,
                     show_default=True, help="Side of the square input in pixels. "
                                             "Example: --image-size 160"),
        click.option("--weights", type=WeightsType(), default="imagenet", show_default=True,
                     help="Pretrained weights: imagenet, none (random init) or a .h5 file. "
                          "Example: --weights none"),
        click.option("--metric", type=click.Choice(_METRICS), default="cosine",
                     show_default=True, help="Prototype similarity. Example: --metric euclidean"),
    ]):
        func = option(func)
    return func


def _load(kerastl, folder: str, size: int):
    return kerastl.data.from_directory(folder, image_size=size, shuffle=False)


@click.group("fewshot")
def fewshot_command():
    """Few-shot classes: prototype classifiers from a few photos per class.

    \b
    Examples:
      kerastl fewshot build support/ --out product.keras --export apps/products
      kerastl fewshot evaluate flowers/val --ways 5 --shots 1 --episodes 600
    """


@fewshot_command.command("build")
@click.argument("support", type=click.Path(exists=True, file_okay=False))
@_backbone_options
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="Where to save the prototype model (.keras). Example: --out product.keras")
@click.option("--fine-tune-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="Baseline++ steps on the support features (0: plain prototypes). "
                   "Example: --fine-tune-steps 50")
@click.option("--export", "export_dir", type=click.Path(file_okay=False), default=None,
              help="Also write the on-device files (embedding .tflite, prototypes, classify "
                   "signature) to this folder. Example: --export apps/products")
@click.option("--quantization", default="float32,int8", show_default=True,
              help="Quantizations of the embedding .tflite with --export (int8 calibrates on "
                   "the support photos). Example: --quantization float32")
@output_options
def build_command(support, *, backbone, image_size, weights, metric, out_path,
                  fine_tune_steps, export_dir, quantization, out: Output):
    """Build a prototype classifier from SUPPORT, a folder with one subfolder of
    photos per class (a few photos each).

    \b
    Examples:
      kerastl fewshot build support/ --out product.keras
      kerastl fewshot build support/ --out product.keras --export apps/products
    """
    kerastl = import_kerastl(debug=out.debug)
    import kerastl.fewshot as fs

    data = _load(kerastl, support, image_size)
    with out.working():
        model = fs.build(backbone, data, metric=metric, weights=weights,
                         input_shape=image_size, fine_tune_steps=fine_tune_steps)
        model.save(out_path)
    result = {"model": out_path, "class_names": kerastl.model_info(model).class_names,
              "images": sum(data.num_examples.values())}
    text = f"Prototype model of {len(result['class_names'])} classes -> {out_path}"
    if export_dir:
        with out.working():
            report = fs.export(model, export_dir, quantization=comma_list(quantization),
                               representative_data=data.train, support_data=data.train,
                               verbose=0)
        result["export"] = report.to_dict()
        text += "\n" + str(report)
    out.result(result, text, quiet_text=out_path)


@fewshot_command.command("evaluate")
@click.argument("data", type=click.Path(exists=True, file_okay=False))
@_backbone_options
@click.option("--ways", type=click.IntRange(min=2), default=5, show_default=True,
              help="Classes per episode. Example: --ways 2")
@click.option("--shots", type=click.IntRange(min=1), default=1, show_default=True,
              help="Support photos per class. Example: --shots 5")
@click.option("--queries", type=click.IntRange(min=1), default=15, show_default=True,
              help="Query photos per class. Example: --queries 10")
@click.option("--episodes", type=click.IntRange(min=1), default=600, show_default=True,
              help="Number of episodes. Example: --episodes 100")
@click.option("--method", type=click.Choice(_METHODS), default="prototypes",
              show_default=True, help="Classifier built per episode. Example: --method logistic")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the episode draws. Example: --seed 1")
@output_options
def evaluate_command(data, *, backbone, image_size, weights, metric, ways, shots, queries,
                     episodes, method, seed, out: Output):
    """Few-shot accuracy on DATA (one subfolder of photos per class): mean and
    95% interval over N-way K-shot episodes.

    \b
    Examples:
      kerastl fewshot evaluate flowers/val --ways 5 --shots 1
      kerastl fewshot evaluate flowers/val --ways 5 --shots 5 --episodes 600
    """
    kerastl = import_kerastl(debug=out.debug)
    import kerastl.fewshot as fs

    images = _load(kerastl, data, image_size)
    with out.working():
        result = fs.evaluate(backbone, images, ways=ways, shots=shots, queries=queries,
                             episodes=episodes, seed=seed, method=method, metric=metric,
                             input_shape=image_size, weights=weights)
    out.result(result.to_dict(), str(result),
               quiet_text=f"{result.mean:.4f}\t{result.ci95:.4f}")


__all__ = ["fewshot_command"]
