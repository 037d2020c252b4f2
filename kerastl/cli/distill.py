"""``kerastl distill TEACHER_MODEL DATA``: a trained model teaches a small one; export it."""

from __future__ import annotations

import time

import click

from kerastl.cli import options as opts
from kerastl.cli.common import Output, import_kerastl, output_options, report_module
from kerastl.cli.config import BlocksType, JsonDict, WeightsType, config_option
from kerastl.cli.loading import check_data_spec, load_training_data
from kerastl.cli.train import _fit_summary, _summary_text

MODEL_FILE = "model.keras"
AUGMENTS = ("crop_flip", "flip", "none")  # kerastl.distillation.views.AUGMENTS, TF-free here


def _load_teachers(kerastl, paths, out):
    teachers = []
    for path in paths:
        out.status(f"Loading teacher {path} ...")
        teachers.append(kerastl.load(path, compile=False))
    return teachers


def distill_run(params: dict, out: Output) -> dict:
    """Runs one ``kerastl distill`` with resolved flag values; returns the JSON result."""
    start = time.perf_counter()
    data_spec = check_data_spec(params["data"])
    if not params["teacher_model"]:
        raise click.UsageError("Missing argument 'TEACHER_MODEL'.")
    kerastl = import_kerastl(debug=out.debug)
    import kerastl.distillation

    opts.check_backbone(kerastl, params["student"])
    run_dir = opts.run_folder(params["output"], data=data_spec, backbone=params["student"],
                              overwrite=params["overwrite"])
    teachers = _load_teachers(kerastl, (params["teacher_model"],) + tuple(params["ensemble"]),
                              out)
    teacher_size = kerastl.model_info(teachers[0]).input_shape[0]
    size = opts.resolve_image_size(kerastl, params["student"], params["image_size"])
    opts.set_seed(params["seed"])
    strategy = opts.get_strategy(kerastl, params["strategy"], out)
    out.status(f"Loading {data_spec} at {teacher_size}x{teacher_size} (the teacher's size) ...")
    with out.working():
        data = load_training_data(kerastl, data_spec, image_size=teacher_size,
                                  batch_size=params["batch_size"],
                                  validation_split=params["validation_split"],
                                  seed=params["seed"])
    student = kerastl.build(params["student"], num_classes=data.num_classes,
                            class_names=data.class_names, input_shape=(size, size, 3),
                            weights=params["weights"], backbone_kwargs=params["student_kwargs"],
                            strategy=strategy)
    out.status(f"Distilling into {params['student']} at {size}x{size} ...")
    with out.working():
        report = kerastl.distillation.distill(
            teachers if len(teachers) > 1 else teachers[0], student, data,
            unlabeled=params["unlabeled"], temperature=params["temperature"],
            alpha=params["alpha"], views=params["views"], augment=params["augment"],
            epochs=params["epochs"], fine_tune_epochs=params["fine_tune_epochs"],
            learning_rate=params["learning_rate"],
            trainable_blocks=params["trainable_blocks"],
            batch_size=params["batch_size"], checkpoint_dir=params["checkpoint_dir"],
            strategy=strategy, seed=params["seed"], verbose=out.verbose)
    run_dir.mkdir(parents=True, exist_ok=True)
    model_path = run_dir / MODEL_FILE
    student.save(model_path)
    # The student's own size for the export's calibration and the report's evaluation.
    student_data = load_training_data(kerastl, data_spec, image_size=size,
                                      batch_size=params["batch_size"],
                                      validation_split=params["validation_split"],
                                      seed=params["seed"])
    export_report = None
    if params["export"]:
        export_report = opts.export_model(kerastl, student, params["export"],
                                          quantization=params["quantization"],
                                          data=student_data, out=out)
    settings = opts.settings_dict(params, image_size=size, data=data_spec)
    with out.working():
        run = report_module()(run_dir, model=student, fit_report=report, eval_data=student_data,
                              export_report=export_report, config=settings,
                              title=f"kerastl distill: {data_spec} into {params['student']}")
    seconds = time.perf_counter() - start
    summary = _fit_summary(report)
    result = {"run_dir": str(run_dir), "model": str(model_path), "report": str(run.file("report")),
              "metrics": {k: run.metrics[k] for k in ("accuracy", "macro_f1", "num_examples")
                          if run.metrics and k in run.metrics},
              "distill": summary,
              "export": None if export_report is None else export_report.to_dict(),
              "seconds": seconds}
    out.result(result, f"{report}\n" + _summary_text(run, model_path, export_report, seconds),
               quiet_text=str(run_dir))
    return result


@click.command("distill")
@click.argument("teacher_model", required=False)
@click.argument("data", required=False)
@click.option("--ensemble", multiple=True, type=click.Path(), default=(),
              help="Another teacher (repeatable): the targets are the average of the "
                   "teachers' probabilities. Example: --ensemble runs/b/model.keras")
@click.option("--student", default="mobilenet", show_default=True,
              help="Backbone of the student (see `kerastl backbones`). Example: --student "
                   "mobilenet_v3_small")
@click.option("--student-kwargs", type=JsonDict(), default=None,
              help="Student backbone constructor options as JSON. "
                   "Example: --student-kwargs '{\"alpha\": 0.25}'")
@click.option("--image-size", type=click.IntRange(min=1), default=None,
              help="Side of the student's square input [default: the backbone's]. "
                   "Example: --image-size 160")
@click.option("--weights", type=WeightsType(), default="imagenet", show_default=True,
              help="Student's initial weights: imagenet, none or a .h5 file. "
                   "Example: --weights none")
@click.option("--unlabeled", type=click.Path(exists=True, file_okay=False), default=None,
              help="Folder of unlabelled images: distillation term only. "
                   "Example: --unlabeled photos_unsorted/")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=2.0,
              show_default=True, help="Softmax temperature. Example: --temperature 4")
@click.option("--alpha", type=click.FloatRange(0, 1), default=0.9, show_default=True,
              help="Weight of the distillation term (the label term gets 1 - alpha). "
                   "Example: --alpha 1")
@click.option("--views", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Fixed augmented views per image the teacher runs on once. "
                   "Example: --views 8")
@click.option("--augment", type=click.Choice(AUGMENTS), default="crop_flip", show_default=True,
              help="How the views are drawn. Example: --augment flip")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of the distilled head stage when DATA has no labelled images "
                   "[default: 30]. Example: --epochs 10")
@click.option("--fine-tune-epochs", type=click.IntRange(min=1), default=None,
              help="Epochs of the distillation stage, after the student's kerastl.fit "
                   "[default: 24]. Example: --fine-tune-epochs 30")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak learning rate [default: 1e-3]. Example: --learning-rate 3e-4")
@click.option("--trainable-blocks", type=BlocksType(), default=None,
              help="Student blocks distilled (the frozen ones below are cached) "
                   "[default: 4, as kerastl.fit]. Example: --trainable-blocks 6")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True,
              help="Images per batch. Example: --batch-size 64")
@click.option("--validation-split", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None,
              help="Fraction of each class held out for validation when DATA has no val/ "
                   "folder [default: 0.2]. Example: --validation-split 0.1")
@click.option("--strategy", type=click.Choice(opts.STRATEGIES), default="auto",
              show_default=True, help="Distribution strategy. Example: --strategy cpu")
@click.option("--seed", type=int, default=1337, show_default=True,
              help="Seed of the split, the views, the order and the weights. Example: --seed 7")
@click.option("--checkpoint-dir", type=click.Path(file_okay=False), default=None,
              help="Make the run resumable (the teacher's outputs are kept there too). "
                   "Example: --checkpoint-dir runs/small/ckpt")
@opts.run_export_options
@config_option
@output_options
def distill_command(*, out: Output, **params):
    """Distil TEACHER_MODEL (a trained kerastl .keras file) into a small student on DATA.

    DATA is a folder with one subfolder of images per class (train/ and val/,
    or split here by --validation-split). It is loaded at the teacher's input
    size; the student sees the same augmented views at its own size. The run
    folder gets the student's model.keras and report; --export writes its
    SavedModel and .tflite files like `kerastl train`.

    \b
    Examples:
      kerastl distill runs/flowers/model.keras flowers/ --student mobilenet \\
          --student-kwargs '{"alpha": 0.25}' --image-size 160 --export saved_models/small
      kerastl distill big.keras photos/ --unlabeled unsorted/ --alpha 1 --views 8
    """
    distill_run(opts.take_renamed(params, out), out)
