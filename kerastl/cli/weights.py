"""``kerastl weights add FILE_OR_FOLDER``: ImageNet weights for offline machines."""

from __future__ import annotations

import click

from kerastl.cli.common import Output, output_options, safe_field


@click.group("weights")
def weights_command():
    """Make downloaded ImageNet weight files usable offline.

    Keras looks for weights="imagenet" files in $KERAS_HOME/models (default
    ~/.keras/models) before it downloads anything, under a name that depends
    on the input size for MobileNet and MobileNetV2. `kerastl weights add`
    places a file there under every such name.

    \b
    Examples:
      kerastl weights add ~/Downloads/mobilenet_2_5_224_tf_no_top.h5
      kerastl weights add ../shared/assets/weights --copy
      kerastl weights list
    """


@weights_command.command("add")
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("--copy", is_flag=True, default=False,
              help="Copy each file into the cache (once; its other names link to the copy) "
                   "instead of linking to it where it is. Example: --copy")
@click.option("--overwrite", is_flag=True, default=False,
              help="Replace other files already under those names. Example: --overwrite")
@click.option("--keras-home", type=click.Path(file_okay=False), default=None,
              help="The Keras home to fill [default: $KERAS_HOME, else ~/.keras]. "
                   "Example: --keras-home /data/keras")
@output_options
def add_command(sources, *, copy: bool, overwrite: bool, keras_home, out: Output):
    """Place weight files (or every .h5 file of a folder) in $KERAS_HOME/models
    under every name Keras asks for them by; symbolic links unless --copy.

    \b
    Examples:
      kerastl weights add mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5
      kerastl weights add ../shared/assets/weights --copy
    """
    from kerastl import weights

    placed = []
    for source in sources:
        placed += weights.add(source, keras_home_dir=keras_home, copy=copy, overwrite=overwrite)
    folder = placed[0].path.parent if placed else None
    lines = [f"{p.action}: {safe_field(p.path.name, 200)}" for p in placed]
    lines.append(f"{len(placed)} name(s) in {folder}")
    out.result({"models_dir": str(folder),
                "placed": [{"path": str(p.path), "source": str(p.source), "action": p.action}
                           for p in placed]},
               "\n".join(lines), quiet_text=str(folder))


@weights_command.command("list")
@click.option("--keras-home", type=click.Path(file_okay=False), default=None,
              help="The Keras home to read [default: $KERAS_HOME, else ~/.keras]. "
                   "Example: --keras-home /data/keras")
@output_options
def list_command(*, keras_home, out: Output):
    """List the weight files Keras finds offline (in $KERAS_HOME/models).

    \b
    Examples:
      kerastl weights list
      kerastl weights list --json
    """
    from kerastl import weights

    files = weights.cached(keras_home)
    home = keras_home or weights.keras_home()
    text = "\n".join(safe_field(p.name, 200) for p in files) or f"No weight files in {home}/models."
    out.result({"models_dir": f"{home}/models", "files": [p.name for p in files]}, text,
               quiet_text="\n".join(p.name for p in files))
