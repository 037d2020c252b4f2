"""``kerastl backbones [PATTERN]``: the backbone registry as a table."""

from __future__ import annotations

import click

from kerastl.cli.common import CliFailure, Output, import_kerastl, output_options

COLUMNS = ("name", "input size", "params", "blocks", "features", "preprocessing")


def backbone_rows(pattern: str | None, *, debug: bool = False) -> list[dict]:
    """Returns one dict per registered backbone matching `pattern`.

    Args:
        pattern: A substring or glob, as for `kerastl.list_backbones`; None for all.
        debug: Keep TensorFlow's start-up log lines.

    Returns:
        Dicts with ``name``, ``default_input_size``, ``num_params``,
        ``num_blocks``, ``feature_dim``, ``preprocessing`` and ``family``.
    """
    kerastl = import_kerastl(debug=debug)
    rows = []
    for name in kerastl.list_backbones(pattern):
        spec = kerastl.get_backbone_spec(name)
        rows.append({"name": spec.name, "default_input_size": spec.default_input_size,
                     "num_params": spec.num_params, "num_blocks": spec.num_blocks,
                     "feature_dim": spec.feature_dim, "preprocessing": spec.preprocessing,
                     "family": spec.family})
    return rows


def _params(n: int) -> str:
    return f"{n / 1e6:.1f}M" if n else "-"


def format_table(rows: list[dict]) -> str:
    """Formats backbone rows as an aligned text table."""
    cells = [[r["name"], f"{r['default_input_size']}", _params(r["num_params"]),
              str(r["num_blocks"]), str(r["feature_dim"]), r["preprocessing"]] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(COLUMNS, *cells)]
    fmt = "  ".join("{:<%d}" % w if i in (0, 5) else "{:>%d}" % w for i, w in enumerate(widths))
    lines = [fmt.format(*COLUMNS), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*c) for c in cells]
    return "\n".join(lines)


@click.command("backbones")
@click.argument("pattern", required=False)
@output_options
def backbones_command(pattern, *, out: Output):
    """List the backbones kerastl can build, with their default input size,
    parameter count and number of named blocks (the unit of --trainable-blocks).

    PATTERN filters the names: a substring (mobilenet) or a glob (resnet*_v2).
    TF Hub feature vectors are used as hub:<handle or path> and are not listed.

    \b
    Examples:
      kerastl backbones
      kerastl backbones mobilenet
      kerastl backbones 'efficientnet_v2*' --json
    """
    rows = backbone_rows(pattern, debug=out.debug)
    if not rows:
        raise CliFailure(f"No backbone matches {pattern!r}; run `kerastl backbones` for the "
                         "full list.", json_mode=out.json)
    out.result(rows, format_table(rows), quiet_text="\n".join(r["name"] for r in rows))
