"""``kerastl rank DATA --candidates a,b,c``: which backbone to fine-tune, before training."""

from __future__ import annotations

import click

from kerastl.cli.common import Output, import_kerastl, output_options
from kerastl.cli.config import config_option
from kerastl.cli.loading import check_data_spec, load_training_data

METRICS = ("logme", "linear_probe")  # kerastl.ranking.METRICS (kept TensorFlow-free here)
DEFAULT_IMAGE_SIZE = 224


@click.command("rank")
@click.argument("data", required=False)
@click.option("--candidates", required=True,
              help="Comma-separated backbones: registry names, hub:<handle>, "
                   "kerashub:<preset>, each optionally with options and a size, "
                   "name(key=value)@size. Example: --candidates "
                   "'mobilenet_v2@160,mobilenet(alpha=0.25)@128,hub:/models/mnv2'")
@click.option("--metric", type=click.Choice(METRICS), default="logme", show_default=True,
              help="Score of the frozen features: LogME, or the cross-validated log-loss "
                   "of a linear probe. Example: --metric linear_probe")
@click.option("--image-size", type=click.IntRange(min=1), default=DEFAULT_IMAGE_SIZE,
              show_default=True,
              help="Size the images are loaded at, and the input size of candidates "
                   "without @size. Example: --image-size 160")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also score a random-initialised copy of the best candidate (the "
                   "negative-transfer check). Example: --no-reference")
@click.option("--margin", type=click.FloatRange(min=0.0), default=0.05, show_default=True,
              help="How much a pretrained candidate must beat the reference by. "
                   "Example: --margin 0.1")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per backbone batch. Example: --batch-size 64")
@click.option("--max-per-class", type=click.IntRange(min=1), default=None,
              help="Rank on a seeded sample of at most this many images per class (the "
                   "same sample for every candidate; default every image). "
                   "Example: --max-per-class 20")
@click.option("--validation-split", type=click.FloatRange(0.0, 1.0, min_open=True,
                                                          max_open=True), default=None,
              help="Fraction held out as validation (both splits are scored; a test/ "
                   "folder never is). Example: --validation-split 0.2")
@click.option("--weights", type=click.Choice(("imagenet", "none")), default="imagenet",
              show_default=True,
              help="Pretrained weights of the candidates, or none (random init, e.g. to "
                   "check the ranking pipeline offline). Example: --weights none")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of random initialisation and the probe's folds. Example: --seed 1")
@config_option(example="rank.yaml")
@output_options
def rank_command(*, out: Output, **params):
    """Rank candidate backbones on DATA by how well their frozen features fit
    the labels (no fine-tuning): one backbone pass each, best first, with the
    feature time, parameters and expected .tflite size. A random-initialised
    copy of the best candidate is scored too; when no pretrained backbone
    beats it clearly, the table warns of negative transfer.

    DATA is a folder of class folders (or train/ and val/), or tfds:NAME.

    \b
    Examples:
      kerastl rank photos/ --candidates mobilenet_v2,mobilenet
      kerastl rank photos/ --candidates 'mobilenet_v2@96,mobilenet_v2@224' --json
      kerastl rank photos/ --candidates mobilenet_v2,hub:/models/mnv2 --metric linear_probe
      kerastl rank big_photos/ --candidates mobilenet_v2,mobilenet --max-per-class 20
    """
    spec = check_data_spec(params["data"])
    kerastl = import_kerastl(debug=out.debug)
    import dataclasses

    from kerastl.ranking import Candidate, rank_backbones, split_candidates

    candidates = [Candidate.parse(c) for c in split_candidates(params["candidates"])]
    if params["weights"] == "none":
        candidates = [dataclasses.replace(c, weights=None) for c in candidates]
    data = load_training_data(kerastl, spec, image_size=params["image_size"],
                              batch_size=params["batch_size"],
                              validation_split=params["validation_split"], seed=params["seed"])
    out.status(f"Ranking {len(candidates)} backbone(s) on {spec} ({params['metric']})")
    with out.working():
        ranking = rank_backbones(data, candidates, image_size=params["image_size"],
                                 metric=params["metric"], reference=params["reference"],
                                 margin=params["margin"],
                                 max_per_class=params["max_per_class"], seed=params["seed"])
    out.result(ranking.to_dict(), str(ranking),
               quiet_text="\n".join(f"{r.name}\t{r.score:.6g}" for r in ranking.rows))
