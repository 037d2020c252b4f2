"""``kerastl train DATA``: load, build, fit, evaluate, export, and write a run folder."""

from __future__ import annotations

import json
import time

import click

from kerastl.cli import options as opts
from kerastl.cli.common import Output, import_kerastl, output_options, report_module
from kerastl.cli.config import BlocksType, JsonDict, config_option
from kerastl.cli.loading import check_data_spec
from kerastl.training.recipes import RECIPES  # TensorFlow-free: the CLI stays lazy

MODEL_FILE = "model.keras"
ADAPTER_FILE = "adapter.peft.weights.h5"
PEFT_METHODS = ("lora", "bitfit", "bn_affine")  # kerastl.peft.METHODS, TensorFlow-free here


def _peft_setting(params: dict):
    """The ``peft`` argument of `kerastl.fit` from the --peft flags (None without --peft)."""
    lora = {"rank": params["lora_rank"], "alpha": params["lora_alpha"]}
    if params["peft"] != "lora" and any(v is not None for v in lora.values()):
        raise click.UsageError("--lora-rank and --lora-alpha need --peft lora.")
    if params["peft"] is None:
        if params["peft_blocks"] is not None:
            raise click.UsageError("--peft-blocks needs --peft.")
        return None
    setting = {"method": params["peft"], "blocks": params["peft_blocks"] or "all"}
    if params["peft"] == "lora":
        setting.update({k: v for k, v in lora.items() if v is not None})
    return setting


def _summary_text(run, model_path, export_report, seconds: float) -> str:
    lines = [str(run), f"  model: {model_path}"]
    if export_report is not None:
        lines.append(f"  export: {export_report.path}")
        for artifact in export_report.artifacts:
            if artifact.format == "tflite":
                acc = "" if artifact.accuracy is None else f", accuracy {artifact.accuracy:.4f}"
                lines.append(f"    {artifact.name}: {artifact.size_bytes:,} bytes{acc}")
    lines.append(f"  time: {seconds:.0f}s")
    return "\n".join(lines)


def _fit_summary(fit_report) -> dict:
    """The fit report as JSON, without the (long) lists of trained variable paths."""
    out = fit_report.to_dict()
    for stage in out.get("stages", []):
        stage.pop("trainable_weights", None)
    return out


def multitask_run(params: dict, out: Output, peft) -> dict:
    """``kerastl train --tasks '{task: DATA}'``: one backbone, one head per task."""
    start = time.perf_counter()
    if params["data"] is not None:
        raise click.UsageError("Pass DATA or --tasks (one DATA per task), not both.")
    specs = {t: check_data_spec(v) for t, v in params["tasks"].items()}
    kerastl = import_kerastl(debug=out.debug)
    import kerastl.multitask

    opts.check_backbone(kerastl, params["backbone"])
    run_dir = opts.run_folder(params["output"], data="_".join(specs), overwrite=params["overwrite"],
                              backbone=params["backbone"])
    data = {}
    for task, spec in specs.items():
        size, strategy, data[task] = opts.prepare_run(kerastl, params, out, data_spec=spec,
                                                      backbone=params["backbone"])
    model = kerastl.build(params["backbone"], tasks={t: d.class_names for t, d in data.items()},
                          input_shape=(size, size, 3), weights=params["weights"],
                          backbone_kwargs=params["backbone_kwargs"], strategy=strategy)
    out.status(f"Training {params['backbone']} on tasks {', '.join(specs)} ...")
    with out.working():
        report = kerastl.multitask.fit(
            model, {t: d.train for t, d in data.items()},
            {t: d.validation for t, d in data.items() if d.validation is not None} or None,
            loss_weighting=params["loss_weighting"], peft=peft, epochs=params["epochs"] or 10,
            trainable_blocks=params["trainable_blocks"] or 0, seed=params["seed"],
            learning_rate=params["learning_rate"] or 1e-3, verbose=out.verbose)
    run_dir.mkdir(parents=True, exist_ok=True)
    model.save(run_dir / MODEL_FILE)
    adapter = None
    if peft is not None:
        import kerastl.peft

        adapter = str(kerastl.peft.save(model, run_dir / ADAPTER_FILE))
    exported = None
    if params["export"]:
        quantization = list(params["quantization"] or ["float32"])
        calibration = ({t: d.train for t, d in data.items()} if "int8" in quantization
                       else None)  # int8: calibrated on every task's training images
        exported = kerastl.multitask.export(model, params["export"], quantization=quantization,
                                            representative_data=calibration).to_dict()
    result = {"run_dir": str(run_dir), "model": str(run_dir / MODEL_FILE), "adapter": adapter,
              "fit": report.to_dict(), "export": exported, "seconds": time.perf_counter() - start}
    (run_dir / "multitask_report.json").write_text(json.dumps(result, indent=2, default=str))
    out.result(result, str(report), quiet_text=str(run_dir))
    return result


def train_run(params: dict, out: Output) -> dict:
    """Runs one ``kerastl train`` with resolved flag values; returns the JSON result."""
    peft = _peft_setting(params)
    if params["tasks"]:
        return multitask_run(params, out, peft)
    start = time.perf_counter()
    data_spec = check_data_spec(params["data"])
    kerastl = import_kerastl(debug=out.debug)
    run_dir, size, strategy, data, model = opts.start_run(kerastl, params, out,
                                                          data_spec=data_spec)
    out.status(f"Training {params['backbone']} (recipe {params['recipe']}) ...")
    with out.working():
        fit_report = kerastl.fit(model, data.train, data.validation, recipe=params["recipe"],
                                 peft=peft,
                                 epochs=params["epochs"],
                                 fine_tune_epochs=params["fine_tune_epochs"],
                                 learning_rate=params["learning_rate"],
                                 backbone_learning_rate=params["backbone_learning_rate"],
                                 trainable_blocks=params["trainable_blocks"],
                                 class_weight=params["class_weight"],
                                 checkpoint_dir=params["checkpoint_dir"], strategy=strategy,
                                 seed=params["seed"], verbose=out.verbose)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_path = run_dir / MODEL_FILE
    model.save(model_path)
    adapter = None
    if peft is not None:
        import kerastl.peft

        adapter = str(kerastl.peft.save(model, run_dir / ADAPTER_FILE))
    export_report = None
    if params["export"]:
        export_report = opts.export_model(kerastl, model, params["export"],
                                          quantization=params["quantization"], data=data,
                                          out=out)
    settings = opts.settings_dict(params, image_size=size, data=data_spec)
    out.status("Evaluating and writing the run report ...")
    with out.working():
        run = report_module()(run_dir, model=model, fit_report=fit_report, eval_data=data,
                              export_report=export_report, config=settings,
                              title=f"kerastl train: {data_spec} with {params['backbone']}")
    seconds = time.perf_counter() - start
    result = {"run_dir": str(run_dir), "model": str(model_path), "adapter": adapter,
              "report": str(run.file("report")),
              "metrics": {k: run.metrics[k] for k in ("accuracy", "macro_f1", "num_examples")
                          if run.metrics and k in run.metrics},
              "stages": run.stages, "fit": _fit_summary(fit_report),
              "export": None if export_report is None else export_report.to_dict(),
              "seconds": seconds}
    out.result(result, _summary_text(run, model_path, export_report, seconds),
               quiet_text=str(run_dir))
    return result


@click.command("train")
@opts.data_model_options
@click.option("--recipe", type=click.Choice(RECIPES), default="auto", show_default=True,
              help="How to train: feature_extraction (head only), fine_tune, two_stage (head "
                   "then top blocks), progressive; auto picks by dataset size. "
                   "Example: --recipe two_stage")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of the first stage: the head stage, or the only stage of "
                   "feature_extraction and fine_tune [default: the recipe's]. "
                   "Example: --epochs 5")
@click.option("--fine-tune-epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of each fine-tuning stage of two_stage and progressive "
                   "(feature_extraction and fine_tune have one stage, set by --epochs) "
                   "[default: 6]. Example: --fine-tune-epochs 3")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak learning rate of the head [default: the recipe's]. "
                   "Example: --learning-rate 3e-4")
@click.option("--backbone-learning-rate", type=click.FloatRange(min=0, min_open=True),
              default=None,
              help="Peak learning rate of the top unfrozen backbone block [default: "
                   "two_stage and progressive: the fine-tuning stage's head rate; fine_tune: "
                   "a tenth of --learning-rate]. Example: --backbone-learning-rate 1e-5")
@click.option("--trainable-blocks", type=BlocksType(), default=None,
              help="How many top backbone blocks to fine-tune, or all [default: the "
                   "recipe's]. Example: --trainable-blocks 4")
@click.option("--peft", type=click.Choice(PEFT_METHODS), default=None,
              help="Parameter-efficient fine-tuning after the head: lora (low-rank updates of "
                   "the 1x1 convolution / dense kernels), bitfit (biases only) or bn_affine "
                   "(BatchNorm scale and offset); the run folder gets an adapter-only file "
                   f"{ADAPTER_FILE}. Example: --peft lora --lora-rank 8")
@click.option("--lora-rank", type=click.IntRange(min=1), default=None,
              help="LoRA rank (with --peft lora) [default: 8]. Example: --lora-rank 4")
@click.option("--lora-alpha", type=click.FloatRange(min=0, min_open=True), default=None,
              help="LoRA scale numerator: updates are alpha/rank * A @ B [default: the rank]. "
                   "Example: --lora-alpha 16")
@click.option("--peft-blocks", type=BlocksType(), default=None,
              help="Top backbone blocks --peft applies to, or all [default: all]. "
                   "Example: --peft-blocks 4")
@click.option("--tasks", type=JsonDict(), default=None,
              help="Multi-task model: one DATA folder per task as JSON (or a tasks: mapping "
                   "in --config), one shared backbone and a head per task; --epochs, "
                   "--trainable-blocks and --peft apply to it. "
                   "Example: --tasks '{\"species\": \"flowers/\", \"pet\": \"pets/\"}'")
@click.option("--loss-weighting", type=click.Choice(("equal", "uncertainty")), default="equal",
              show_default=True,
              help="How --tasks losses add up: equal, or uncertainty (learned, Kendall et al. "
                   "2018). Example: --loss-weighting uncertainty")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True), default=None,
              help="Dropout before the classifier [default: the head's]. Example: --dropout 0.2")
@click.option("--class-weight", type=click.Choice(("balanced", "sqrt")), default=None,
              help="Weigh classes by their inverse frequency for imbalanced data. "
                   "Example: --class-weight balanced")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="Make training resumable: rerun the same command after a crash and it "
                   "goes on where it stopped. Example: --checkpoint-dir runs/flowers/ckpt")
@opts.run_export_options
@config_option
@output_options
def train_command(*, out: Output, **params):
    """Train an image classifier on DATA and write a run folder.

    DATA is a folder with one subfolder of images per class (already split
    into train/ and val/, or split here by --validation-split), or tfds:NAME.
    The run folder gets model.keras, config.json, history.csv, metrics.json
    (per-class precision/recall/F1, confusion matrix), PNG plots and
    report.md; --export also writes a SavedModel and .tflite files.

    \b
    Examples:
      kerastl train flowers/ --export saved_models/flowers
      kerastl train photos/ --backbone efficientnet_b0 --image-size 224 --epochs 5
      kerastl train photos/ --recipe two_stage --trainable-blocks 4 --fine-tune-epochs 3
      kerastl train photos/ --peft lora --lora-rank 8 --peft-blocks 4
      kerastl train --tasks '{"species": "flowers/", "pet": "pets/"}' --epochs 5
      kerastl train --config train.yaml --epochs 2
    """
    train_run(opts.take_renamed(params, out), out)
