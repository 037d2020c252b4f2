"""The ``kerastl`` command line: train, tune, export, evaluate and predict from a shell.

Every command is a thin layer over the public Python API (`kerastl.build`,
`kerastl.fit`, `kerastl.tune`, `kerastl.export`, `kerastl.report`, ...);
TensorFlow is imported only when a command needs it.

Example:
    $ kerastl train photos/ --export saved_models/photos
    $ kerastl predict saved_models/photos/1/model_int8.tflite cat.jpg --top-k 3
"""

from __future__ import annotations

from kerastl.cli.common import quiet_environment

quiet_environment()

import click  # noqa: E402

from kerastl.cli.adapt import adapt_command  # noqa: E402
from kerastl.cli.backbones import backbones_command  # noqa: E402
from kerastl.cli.distill import distill_command  # noqa: E402
from kerastl.cli.evaluate import evaluate_command  # noqa: E402
from kerastl.cli.export import export_command  # noqa: E402
from kerastl.cli.predict import predict_command  # noqa: E402
from kerastl.cli.rank import rank_command  # noqa: E402
from kerastl.cli.train import train_command  # noqa: E402
from kerastl.cli.tune import tune_command  # noqa: E402
from kerastl.cli.weights import weights_command  # noqa: E402
from kerastl.cli.fewshot import fewshot_command  # noqa: E402

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _version() -> str:
    from kerastl import __version__

    return __version__


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(_version(), "--version", prog_name="kerastl")
def main():
    """kerastl: transfer learning for Keras 3, from a folder of photos to a
    fine-tuned model and a quantized .tflite file.

    \b
    Examples:
      kerastl train photos/ --export saved_models/photos
      kerastl tune photos/ --max-trials 8 --trainable-blocks 0,2,4,all
      kerastl export runs/photos/model.keras --out saved_models/photos \\
          --quantization int8 --representative-data photos/
      kerastl evaluate saved_models/photos/1/model_int8.tflite photos/
      kerastl predict saved_models/photos/1 cat.jpg dog.jpg --top-k 3
      kerastl backbones mobilenet
      kerastl weights add mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
      kerastl adapt photos/ phone_photos/ --export saved_models/phone
      kerastl distill runs/photos/model.keras photos/ --student mobilenet \
          --student-kwargs '{"alpha": 0.25}' --image-size 160
      kerastl fewshot build support/ --out fewshot.keras
      kerastl rank photos/ --candidates mobilenet_v2,mobilenet

    Run `kerastl COMMAND --help` for every flag of a command. Exit codes:
    0 success, 1 failure, 2 bad usage.
    """


for _command in (train_command, tune_command, export_command, evaluate_command,
                 predict_command, backbones_command, weights_command, adapt_command,
                 distill_command, fewshot_command, rank_command):
    main.add_command(_command)

__all__ = ["main"]
