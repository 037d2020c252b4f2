"""``kerastl tune DATA``: search unfreeze depth, learning rates and dropout; write a run folder."""

from __future__ import annotations

import inspect
import time

import click

from kerastl.cli import options as opts
from kerastl.cli.common import Output, import_kerastl, output_options, report_module
from kerastl.cli.config import CommaList, JsonDict, config_option, excerpt
from kerastl.cli.loading import check_data_spec
from kerastl.training.recipes import RECIPES  # TensorFlow-free: the CLI stays lazy

ALGORITHMS = ("hyperband", "bayesian", "random")
RANK_METRICS = ("logme", "linear_probe")  # kerastl.tuning.backbones.RANK_METRICS, lazily
TUNE_RECIPES = tuple(r for r in RECIPES if r != "auto")  # tune searches concrete recipes
_NUMBER_KEYS = ("learning_rate", "backbone_learning_rate", "dropout", "layer_decay")
RANGE_KEY = "range"  # {"range": [low, high]}, as kerastl.SearchSpace.from_dict
MODEL_FILE = "model.keras"


def _number(text: str, param, ctx, kind) -> float:
    try:
        return float(text)
    except ValueError:
        kind.fail(f"{text!r} is not a number.", param, ctx)


class SpaceValue(click.ParamType):
    """A searched number: ``LOW:HIGH`` (a range), ``A,B,C`` (choices) or one value (fixed).

    In a config file or ``--search-space`` JSON a range is also
    ``{"range": [low, high]}`` (as `kerastl.SearchSpace.from_dict`), and a
    list is always a choice, whatever its length.
    """

    name = "LOW:HIGH|A,B|X"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple) and len(value) == 2:  # already a range
            return (_number(str(value[0]), param, ctx, self),
                    _number(str(value[1]), param, ctx, self))
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, dict):
            bounds = value.get(RANGE_KEY)
            if set(value) != {RANGE_KEY} or not isinstance(bounds, (list, tuple)) \
                    or len(bounds) != 2:
                self.fail(f"{excerpt(value)} must be {{\"range\": [low, high]}} with two "
                          "numbers.", param, ctx)
            return (_number(str(bounds[0]), param, ctx, self),
                    _number(str(bounds[1]), param, ctx, self))
        if isinstance(value, (list, tuple)):
            return [_number(str(v), param, ctx, self) for v in value]
        text = str(value).strip()
        if ":" in text:
            low, _, high = text.partition(":")
            return (_number(low, param, ctx, self), _number(high, param, ctx, self))
        if "," in text:
            return [_number(v, param, ctx, self) for v in text.split(",") if v.strip()]
        return _number(text, param, ctx, self)


class DepthChoices(click.ParamType):
    """Unfreeze depths to try: ``0,2,4,all``."""

    name = "K,K,...|all"

    def convert(self, value, param, ctx):
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        out = []
        for item in items:
            text = str(item).strip().lower()
            if text == "all":
                out.append("all")
            elif text.isdigit():
                out.append(int(text))
            elif text:
                self.fail(f"{item!r} is neither a number of blocks nor 'all'.", param, ctx)
        if not out:
            self.fail("give at least one depth, e.g. 0,2,4,all.", param, ctx)
        return out


def backbone_list(kerastl, text: str) -> list[str]:
    """``--backbone``: one name, or several separated by commas; each checked, none twice."""
    names = [b.strip() for b in str(text).split(",") if b.strip()]
    if not names:
        raise click.BadParameter("give a backbone name, e.g. mobilenet_v2.",
                                 param_hint="'--backbone'")
    repeated = sorted({b for b in names if names.count(b) > 1})
    if repeated:
        raise click.BadParameter(f"{', '.join(map(repr, repeated))} given twice; list each "
                                 "backbone once.", param_hint="'--backbone'")
    for name in names:
        opts.check_backbone(kerastl, name)
    return names


def _space_entries(space_cls, params: dict) -> dict:
    """--search-space entries (checked, numbers converted), then the flags on top."""
    allowed = [p for p in inspect.signature(space_cls.__init__).parameters if p != "self"]
    given = dict(params["search_space"] or {})
    given = {k.replace("-", "_"): v for k, v in given.items()}
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise click.BadParameter(f"unknown key(s) {', '.join(map(repr, unknown))}; valid keys: "
                                 f"{', '.join(allowed)}.", param_hint="'--search-space'")
    for key in _NUMBER_KEYS:  # {"range": [lo, hi]} or "LO:HI" is a range; a list is a choice
        if given.get(key) is not None:
            try:
                given[key] = SpaceValue().convert(given[key], None, None)
            except click.BadParameter as error:
                raise click.BadParameter(f"{key!r}: {error.message}",
                                         param_hint="'--search-space'") from None
    flags = {"trainable_blocks": params["trainable_blocks"],
             "learning_rate": params["learning_rate"],
             "backbone_learning_rate": params["backbone_learning_rate"],
             "dropout": params["dropout"], "recipe": params["recipe"]}
    given.update({k: (list(v) if k == "recipe" else v) for k, v in flags.items()
                  if v is not None})
    return given


def search_space(kerastl, backbone, params: dict):
    """Builds the `kerastl.SearchSpace` of `backbone` from --search-space and the flags.

    Numbers in --search-space take the forms of `SpaceValue`: a range is
    ``{"range": [low, high]}`` or ``"LOW:HIGH"``, a list is a choice. With
    several backbones (a list) the result is the dict of the given entries,
    checked against each backbone's default space; `kerastl.tune` completes
    it per backbone (each keeps its own default depths).
    """
    space_cls = getattr(kerastl, "SearchSpace", None) or kerastl.tuning.SearchSpace
    given = _space_entries(space_cls, params)
    for name in backbone if isinstance(backbone, list) else [backbone]:
        try:
            space = space_cls.default_for(name, **given).check_backbone(name)
        except (ValueError, TypeError) as error:
            raise click.BadParameter(str(error),
                                     param_hint="'--search-space' or its flags") from None
    return given if isinstance(backbone, list) else space


def _result_text(result, run, model_path, seconds: float) -> str:
    ranking = [] if result.ranking is None else [
        str(result.ranking), f"searched: {', '.join(result.backbone_results)}; best: "
        f"{result.backbone}", ""]
    return "\n".join([*ranking, result.summary(), "", str(run), f"  best model: {model_path}",
                      f"  time: {seconds:.0f}s"])


def tune_run(params: dict, out: Output) -> dict:
    """Runs one ``kerastl tune`` with resolved flag values; returns the JSON result."""
    start = time.perf_counter()
    data_spec = check_data_spec(params["data"])
    kerastl = import_kerastl(debug=out.debug)
    backbones = backbone_list(kerastl, params["backbone"])
    backbone = backbones if len(backbones) > 1 else backbones[0]
    space = search_space(kerastl, backbone, params)
    run_dir = opts.run_folder(params["output"], data=data_spec, backbone=params["backbone"],
                              overwrite=params["overwrite"])
    size, strategy, data = opts.prepare_run(kerastl, params, out, data_spec=data_spec,
                                            backbone=backbones[0])
    tuner_dir = params["tuner_dir"] or str(run_dir / "tuner")
    out.status(f"Searching ({params['algorithm']}) ...")
    with out.working():
        result = kerastl.tune(
            data.train, data.validation, backbone=backbone, num_classes=data.num_classes,
            search_space=space, algorithm=params["algorithm"], max_trials=params["max_trials"],
            fine_tune_epochs=params["fine_tune_epochs"], objective=params["objective"],
            directory=tuner_dir, project_name="search", strategy=strategy, seed=params["seed"],
            verbose=out.verbose, refit=params["refit"], prune=params["prune"],
            keep_backbones=params["keep_backbones"], rank_metric=params["rank_metric"],
            build_kwargs={"input_shape": (size, size, 3), "weights": params["weights"],
                          "backbone_kwargs": params["backbone_kwargs"],
                          "class_names": data.class_names,
                          "augmentation": "default" if params["augment"] else None})
    if result.best_model is None:
        raise RuntimeError("No trial completed:\n" + result.summary())
    run_dir.mkdir(parents=True, exist_ok=True)
    model_path = run_dir / MODEL_FILE
    result.best_model.save(model_path)
    export_report = None
    if params["export"]:
        export_report = opts.export_model(kerastl, result.best_model, params["export"],
                                          quantization=params["quantization"], data=data,
                                          out=out)
    settings = opts.settings_dict(params, image_size=size, data=data_spec, tuner_dir=tuner_dir)
    with out.working():
        run = report_module()(run_dir, model=result.best_model, tune_result=result,
                              eval_data=data, export_report=export_report, config=settings,
                              title=f"kerastl tune: {data_spec} with "
                                    f"{result.backbone or backbones[0]}")
    seconds = time.perf_counter() - start
    payload = {"run_dir": str(run_dir), "model": str(model_path),
               "report": str(run.file("report")), "tune": result.to_dict(),
               "backbone": result.backbone or backbones[0],
               "ranking": None if result.ranking is None else result.ranking.to_dict(),
               "dropped_backbones": result.dropped_backbones,
               "metrics": {k: run.metrics[k] for k in ("accuracy", "macro_f1", "num_examples")
                           if run.metrics and k in run.metrics},
               "export": None if export_report is None else export_report.to_dict(),
               "seconds": seconds}
    out.result(payload, _result_text(result, run, model_path, seconds), quiet_text=str(run_dir))
    return payload


@click.command("tune")
@opts.data_model_options
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="hyperband",
              show_default=True, help="Search algorithm (keras-tuner). Example: --algorithm random")
@click.option("--max-trials", type=click.IntRange(min=1), default=None,
              help="Most trials to run [default: one Hyperband iteration, or 10]. "
                   "Example: --max-trials 8")
@click.option("--fine-tune-epochs", type=click.IntRange(min=1), default=6, show_default=True,
              help="Fine-tuning epochs of each trial (Hyperband: of its longest trials) and of "
                   "the refit, after the shared head stage. Example: --fine-tune-epochs 4")
@opts.renamed_option("--max-epochs", type=click.IntRange(min=1))
@click.option("--prune/--no-prune", default=True, show_default=True,
              help="Stop a fine-tuning stage that scores more than 10%% worse than the head "
                   "stage it starts from (50%% after its first epoch). Example: --no-prune")
@click.option("--keep-backbones", type=click.IntRange(min=1), default=2, show_default=True,
              help="With several --backbone names (comma-separated): how many of the best "
                   "ranked by their frozen features (kerastl rank) are searched. "
                   "Example: --backbone mobilenet_v2,mobilenet,efficientnet_b0 "
                   "--keep-backbones 1")
@click.option("--rank-metric", type=click.Choice(RANK_METRICS), default="logme",
              show_default=True,
              help="With several --backbone names: the ranking's score. "
                   "Example: --rank-metric linear_probe")
@click.option("--objective", default="val_accuracy", show_default=True,
              help="Validation metric to optimize. Example: --objective val_loss")
@click.option("--trainable-blocks", type=DepthChoices(), default=None,
              help="Unfreeze depths to try [default: 0, ~10% and ~25% of the blocks, all]. "
                   "Example: --trainable-blocks 0,2,4,all")
@click.option("--learning-rate", type=SpaceValue(), default=None,
              help="Head learning rate: LOW:HIGH (log range), A,B,C (choices) or one value "
                   "[default: 1e-4:1e-2]. Example: --learning-rate 1e-4:1e-2")
@click.option("--backbone-learning-rate", type=SpaceValue(), default=None,
              help="Learning rate of the unfrozen blocks, same forms [default: 1e-6:1e-3]. "
                   "Example: --backbone-learning-rate 1e-5,1e-4")
@click.option("--dropout", type=SpaceValue(), default=None,
              help="Head dropout, same forms (linear range) [default: 0:0.5]. "
                   "Example: --dropout 0.0,0.2")
@click.option("--recipe", type=CommaList(TUNE_RECIPES), default=None,
              help="Training recipe(s) to try, comma-separated (feature_extraction, fine_tune, "
                   "two_stage, progressive) [default: two_stage]. "
                   "Example: --recipe two_stage,fine_tune")
@opts.renamed_option("--recipes", type=CommaList(TUNE_RECIPES))
@click.option("--search-space", type=JsonDict(), default=None,
              help="The whole search space as JSON (keys of kerastl.SearchSpace; a range is "
                   "{\"range\": [LOW, HIGH]} or \"LOW:HIGH\", a list is a choice); the flags "
                   "above override its entries. "
                   "Example: --search-space '{\"dropout\": {\"range\": [0.0, 0.3]}}'")
@click.option("--tuner-dir", type=click.Path(file_okay=False), default=None,
              help="keras-tuner state; rerunning with the same folder resumes the search "
                   "[default: <output>/tuner]. Example: --tuner-dir tuning/flowers")
@click.option("--refit/--no-refit", default=True, show_default=True,
              help="Retrain the best setting for --fine-tune-epochs (or reload its trial "
                   "weights). Example: --no-refit")
@opts.run_export_options
@config_option(example="tune.yaml")
@output_options
def tune_command(*, out: Output, **params):
    """Search the unfreeze depth, learning rates and dropout on DATA, keep
    the best model and write a run folder (trial table and trial-score plot
    included). With several --backbone names (comma-separated) they are
    ranked first on their frozen features and only the --keep-backbones best
    are searched; --image-size then defaults to the first one's input size.

    DATA is a folder with one subfolder of images per class, or tfds:NAME.

    \b
    Examples:
      kerastl tune flowers/ --max-trials 8 --fine-tune-epochs 6
      kerastl tune photos/ --trainable-blocks 0,4,all --learning-rate 1e-4:1e-2
      kerastl tune photos/ --algorithm random --max-trials 4 --export saved_models/photos
      kerastl tune photos/ --backbone mobilenet_v2,mobilenet,efficientnet_b0 --keep-backbones 1
      kerastl tune --config tune.yaml
    """
    tune_run(opts.take_renamed(params, out), out)
