"""``--config FILE``: YAML or JSON settings with the same keys as a command's flags.

Keys are the long flag names with dashes or underscores (``fine-tune-epochs``
or ``fine_tune_epochs``), plus the positional arguments (``data``, ``model``).
Flags given on the command line override the file; the file overrides the
defaults; an unknown key is a usage error (exit code 2) that suggests the
closest flag. Relative paths in the file are relative to the current folder,
like on the command line.

Example ``train.yaml``::

    data: photos/
    backbone: mobilenet_v2
    image-size: 160
    epochs: 5
    quantization: [int8, float16]

``kerastl train --config train.yaml --epochs 2`` trains 2 epochs.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import click

CONFIG_PARAM = "config"
_NOT_SETTABLE = ("config", "help")
MAX_CONFIG_BYTES = 1 << 20   # a settings file is a few hundred bytes; 1 MiB is plenty
MAX_CONFIG_NODES = 10_000    # values after expanding YAML aliases (an alias bomb has billions)
MAX_VALUE_CHARS = 4096       # longest string value in a settings file
EXCERPT_CHARS = 60           # how much of a value an error message shows


def excerpt(value, limit: int = EXCERPT_CHARS) -> str:
    """Returns ``repr(value)`` cut to `limit` characters (for error messages).

    Example:
        >>> kerastl.cli.config.excerpt("x" * 1000, 8)
        "'xxxxxxx... (993 more characters)"
    """
    text = repr(value) if not isinstance(value, (list, dict, tuple)) else _short_repr(value)
    if len(text) <= limit:
        return text
    return f"{text[:limit - 1]}... ({len(text) - limit + 1:,} more characters)"


def _short_repr(value) -> str:
    """`repr` of a container that stops early (an expanded alias bomb is enormous)."""
    parts, size = [], 0
    items = value.items() if isinstance(value, dict) else value
    for item in items:
        part = (f"{excerpt(item[0])}: {excerpt(item[1])}" if isinstance(value, dict)
                else excerpt(item))
        parts.append(part)
        size += len(part)
        if size > EXCERPT_CHARS:
            parts.append("...")
            break
    brackets = "{}" if isinstance(value, dict) else "[]"
    return brackets[0] + ", ".join(parts) + brackets[1]


def _expanded_size(node, memo: dict) -> int:
    """Number of values `node` becomes once aliases are expanded (shared nodes counted
    each time they are used), computed without expanding anything."""
    import yaml

    key = id(node)
    if key in memo:
        return memo[key]
    memo[key] = MAX_CONFIG_NODES + 1  # a node that contains itself is refused too
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, memo) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, memo) + _expanded_size(v, memo)
                        for k, v in node.value)
    else:
        total = 1
    memo[key] = min(total, 10 * MAX_CONFIG_NODES)
    return memo[key]


def _safe_yaml(text: str, path: Path):
    """`yaml.safe_load` that refuses alias bombs before building any value."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}) > MAX_CONFIG_NODES:
            raise click.BadParameter(
                f"{str(path)!r} expands to more than {MAX_CONFIG_NODES:,} values (YAML "
                "aliases); a settings file holds a few flags.", param_hint="'--config'")
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_values(data, path: Path) -> None:
    """Refuses string values too long to be a flag's (checked on the parsed tree)."""
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack += list(value.keys()) + list(value.values())
        elif isinstance(value, (list, tuple)):
            stack += list(value)
        elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            raise click.BadParameter(
                f"{str(path)!r} holds a value of {len(value):,} characters (at most "
                f"{MAX_VALUE_CHARS:,}): {excerpt(value)}", param_hint="'--config'")


def normalize_key(key) -> str:
    """Returns a config key as a flag name: ``"--Fine_Tune-Epochs"`` -> ``"fine-tune-epochs"``."""
    return str(key).strip().lstrip("-").replace("_", "-").lower()


def read_config_file(path) -> dict:
    """Reads a YAML or JSON settings file into a dict.

    Args:
        path: A ``.yaml``/``.yml`` or ``.json`` file (other names are read as YAML,
            of which JSON is a subset).

    Returns:
        The top-level mapping.

    Raises:
        click.BadParameter: The file cannot be parsed or is not a mapping.
    """
    import yaml

    path = Path(path)
    size = path.stat().st_size
    if size > MAX_CONFIG_BYTES:
        raise click.BadParameter(f"{str(path)!r} is {size:,} bytes; a settings file may have at "
                                 f"most {MAX_CONFIG_BYTES:,}.", param_hint="'--config'")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            data = _safe_yaml(text, path)
    except (ValueError, yaml.YAMLError, RecursionError) as error:  # JSON/Unicode errors too
        message = str(error)
        raise click.BadParameter(f"cannot parse {str(path)!r}: {message[:300]}",
                                 param_hint="'--config'") from None
    if data is None:
        return {}
    _check_values(data, path)
    if not isinstance(data, dict):
        raise click.BadParameter(
            f"{str(path)!r} must hold a mapping of flag names to values, not a "
            f"{type(data).__name__}.", param_hint="'--config'")
    return data


def flag_names(command: click.Command) -> dict[str, str]:
    """Maps each settable key of `command` (long flag name or argument name) to its param name."""
    names = {}
    for param in command.params:
        if not param.expose_value or param.name in _NOT_SETTABLE:
            continue
        if isinstance(param, click.Argument):
            names[normalize_key(param.name)] = param.name
            continue
        for opt in param.opts:
            if opt.startswith("--"):
                names[normalize_key(opt)] = param.name
        names.setdefault(normalize_key(param.name), param.name)
    return names


def to_default_map(data: dict, command: click.Command, source: str) -> dict:
    """Translates config keys to `command`'s param names, rejecting unknown keys."""
    names = flag_names(command)
    out, unknown = {}, []
    for key, value in data.items():
        name = names.get(normalize_key(key))
        if name is None:
            unknown.append(key)
            continue
        out[name] = value
    if unknown:
        parts = []
        for key in unknown[:10]:
            close = difflib.get_close_matches(normalize_key(key)[:100], list(names), n=1,
                                              cutoff=0.6)
            parts.append(excerpt(key) + (f" (did you mean {close[0]!r}?)" if close else ""))
        if len(unknown) > 10:
            parts.append(f"and {len(unknown) - 10} more")
        valid = ", ".join(sorted(names))
        raise click.BadParameter(
            f"unknown key(s) in {source!r}: {', '.join(parts)}. Valid keys: {valid}.",
            param_hint="'--config'")
    return out


def _load(ctx: click.Context, param: click.Parameter, value):
    if value is None:
        return None
    data = read_config_file(value)
    ctx.default_map = {**(ctx.default_map or {}), **to_default_map(data, ctx.command, value)}
    ctx.meta["kerastl.config_file"] = str(value)
    return value


def config_option(func=None, *, example: str = "train.yaml"):
    """Adds ``--config FILE`` (read first, so every other flag can override it).

    Use as ``@config_option`` or ``@config_option(example="export.yaml")``
    (the file name shown in the flag's help).
    """
    if func is None:
        return lambda f: config_option(f, example=example)
    return click.option(
        "--config", CONFIG_PARAM, type=click.Path(exists=True, dir_okay=False),
        is_eager=True, expose_value=False, callback=_load,
        help="YAML or JSON file of settings with the same keys as the flags (dashes or "
             f"underscores); flags given here override it. Example: --config {example}")(func)


def explicit_settings(ctx: click.Context) -> dict:
    """Returns ``{param: source}`` for params set on the command line or in the config file."""
    from click.core import ParameterSource

    out = {}
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            out[param.name] = "flag"
        elif source is ParameterSource.DEFAULT_MAP:
            out[param.name] = "config"
    return out


class CommaList(click.ParamType):
    """A comma-separated list on the command line, or a list in a config file."""

    name = "LIST"

    def __init__(self, choices=None):
        self.choices = tuple(choices) if choices else None

    def convert(self, value, param, ctx):
        if isinstance(value, (list, tuple)):
            items = [str(v).strip() for v in value]
        else:
            items = [v.strip() for v in str(value).split(",")]
        items = [v.lower() for v in items if v]
        if self.choices:
            bad = [v for v in items if v not in self.choices]
            if bad:
                close = difflib.get_close_matches(bad[0][:100], self.choices, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                shown = ", ".join(map(excerpt, bad[:5]))
                self.fail(f"{shown} not in {', '.join(self.choices)}.{hint}",
                          param, ctx)
        return tuple(items)


class JsonDict(click.ParamType):
    """A JSON object on the command line, or a mapping in a config file."""

    name = "JSON"

    def convert(self, value, param, ctx):
        if isinstance(value, dict):
            return dict(value)
        try:
            data = json.loads(value)
        except (TypeError, json.JSONDecodeError) as error:
            self.fail(f"{excerpt(value)} is not valid JSON ({str(error)[:200]}).", param, ctx)
        if not isinstance(data, dict):
            self.fail(f"{excerpt(value)} must be a JSON object such as '{{\"alpha\": 0.35}}'.",
                      param, ctx)
        return data


class BlocksType(click.ParamType):
    """An unfreeze depth: a number of top blocks, or ``all``."""

    name = "K|all"

    def convert(self, value, param, ctx):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text == "all":
            return "all"
        try:
            number = int(text)
        except ValueError:
            self.fail(f"{excerpt(value)} is neither a number of blocks nor 'all'.", param, ctx)
        if number < 0:
            self.fail(f"{excerpt(value)} must be >= 0.", param, ctx)
        return number


class WeightsType(click.ParamType):
    """``imagenet``, ``none`` (random init) or a weights file path."""

    name = "imagenet|none|PATH"

    def convert(self, value, param, ctx):
        if value is None:
            return None
        text = str(value).strip()
        if text.lower() in ("none", "null", "random", ""):
            return None
        if text.lower() == "imagenet":
            return "imagenet"
        if not Path(text).expanduser().is_file():
            self.fail(f"{excerpt(text)} is neither 'imagenet', 'none' nor an existing weights "
                      "file.",
                      param, ctx)
        return str(Path(text).expanduser())
