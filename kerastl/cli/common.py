"""What every `kerastl` command shares: output modes, errors and exit codes, quiet TensorFlow.

Exit codes: 0 success, 1 failure (a short ``Error: ...`` line, no traceback
unless ``--debug``), 2 bad usage (click's `click.UsageError` convention: an
unknown flag, a bad value, an unknown config key), 130 interrupted.

Output: human-readable results go to stdout, status lines and progress to
stderr. ``--quiet`` drops status lines and progress; ``--json`` prints one
JSON document on stdout and nothing else there (errors become
``{"error": "..."}``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import io
import json
import os
import re
import shutil
import sys
import warnings

import click

from kerastl._json import json_default


MAX_ERROR_LINES = 12
MAX_LINE_CHARS = 1000      # longest line the CLI prints (text modes)
MAX_LABEL_CHARS = 100      # longest label or file name the CLI prints in a table or list
MAX_ERROR_CHARS = 2000     # longest error message
# C0/C1 control characters (but newline and tab), zero-width and bidirectional
# overrides, line/paragraph separators: nothing from a file may move the cursor,
# retitle the terminal or reorder the text around it.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e"
                     "\u2060-\u206f\ufeff]")
_UNSAFE_IN_FIELD = re.compile("[\t\n]")
EXIT_INTERRUPTED = 130
# Exceptions whose message is written for users: shown without a hint to use --debug.
_USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, NotADirectoryError,
                KeyError, PermissionError)


def _escape(match: re.Match) -> str:
    return match.group(0).encode("unicode_escape").decode("ascii")


def clip(text, limit: int) -> str:
    """Returns `text` cut to `limit` characters, saying how many were left out."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def safe_field(text, limit: int = MAX_LABEL_CHARS) -> str:
    r"""Returns a label or file name as it may be printed inside a line: clipped, and
    every control character (newline and tab included) escaped.

    Example:
        >>> kerastl.cli.common.safe_field("rose\x1b]0;pwned\x07")
        'rose\\x1b]0;pwned\\x07'
    """
    text = clip(text, limit)
    return _UNSAFE_IN_FIELD.sub(_escape, _UNSAFE.sub(_escape, text))


def terminal_safe(text, max_line: int = MAX_LINE_CHARS) -> str:
    """Returns `text` with each line clipped to `max_line` characters and control
    characters (but newline and tab) escaped, so that it can go to a terminal."""
    return "\n".join(_UNSAFE.sub(_escape, clip(line, max_line))
                      for line in str(text).split("\n"))


def quiet_environment() -> None:
    """Turns TensorFlow's C++ log lines off (read once, when TensorFlow is imported).

    An explicit ``TF_CPP_MIN_LOG_LEVEL`` is kept, and ``--debug`` on the
    command line leaves TensorFlow's own default.
    """
    if "--debug" not in sys.argv[1:]:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


@contextlib.contextmanager
def _python_stderr_kept():
    """Drops C-level writes to file descriptor 2 but keeps Python's ``sys.stderr`` working.

    Yields the stream Python-level output should use (a file on a copy of
    the original descriptor 2, or the unchanged ``sys.stderr`` when the
    descriptor cannot be redirected, e.g. under a test runner's capture).
    """
    try:
        sys.stderr.flush()
        fileno = sys.stderr.fileno()
        if fileno != 2:
            raise io.UnsupportedOperation("sys.stderr is not descriptor 2")
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        yield sys.stderr
        return
    stream = open(saved, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None)
                  or "utf-8", errors="replace", closefd=False)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        with contextlib.redirect_stderr(stream):
            yield stream
    finally:
        stream.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
        stream.close()


def import_kerastl(*, debug: bool = False):
    """Imports kerastl and TensorFlow, and turns TensorFlow's Python loggers down.

    ``import kerastl`` itself is lazy (no TensorFlow); commands call this only
    when they need TensorFlow, so ``--help`` and usage errors stay fast. The C++ lines TensorFlow prints at import (CUDA
    probing, CPU features), which no environment variable turns off, are
    dropped by `handle_errors` unless ``--debug``.

    Returns:
        The `kerastl` module.
    """
    quiet_environment()
    import kerastl

    if not debug:
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")
        with contextlib.suppress(ImportError):
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
    return kerastl


def report_module():
    """Returns the `kerastl.report` package (callable as ``kerastl.report(...)``)."""
    import importlib

    return importlib.import_module("kerastl.report")


def _show_warning(message, category, filename, lineno, file=None, line=None):
    text = terminal_safe(clip(str(message).strip(), MAX_ERROR_CHARS))
    click.echo(f"Warning: {text}", err=True)


class CliFailure(click.ClickException):
    """A failed command: exit code 1 and a short message."""

    exit_code = 1

    def __init__(self, message: str, *, json_mode: bool = False):
        super().__init__(message)
        self.json_mode = json_mode

    def show(self, file=None) -> None:
        message = clip(self.format_message(), MAX_ERROR_CHARS)
        if self.json_mode:
            click.echo(json.dumps({"error": message}))
        click.echo(f"Error: {terminal_safe(message)}", err=True)


def short_message(error: BaseException) -> str:
    """Returns an error's message cut to a few lines, with its type when it says nothing."""
    text = str(error).strip()
    if isinstance(error, KeyError) and len(error.args) == 1 and isinstance(error.args[0], str):
        text = error.args[0]
    if not text:
        text = type(error).__name__
    lines = [clip(line, MAX_LINE_CHARS) for line in clip(text, MAX_ERROR_CHARS).splitlines()]
    if len(lines) > MAX_ERROR_LINES:
        lines = lines[:MAX_ERROR_LINES] + ["... (run with --debug for the full message)"]
    text = "\n".join(lines)
    if not isinstance(error, _USER_ERRORS):
        text = f"{type(error).__name__}: {text}\n(run with --debug for the traceback)"
    return text


@dataclasses.dataclass
class Output:
    """How a command talks: text, quiet or JSON, and whether errors show tracebacks.

    Attributes:
        quiet: No status lines or progress.
        json: Print the result as one JSON document on stdout.
        debug: Show full tracebacks and TensorFlow's log lines.
    """

    quiet: bool = False
    json: bool = False
    debug: bool = False

    @property
    def verbose(self) -> int:
        """The ``verbose`` value for kerastl/Keras calls (0 when quiet)."""
        return 0 if self.quiet else 1

    def status(self, message: str) -> None:
        """Prints a status line to stderr (not when quiet)."""
        if not self.quiet:
            click.echo(terminal_safe(message), err=True)

    def result(self, data, text: str | None = None, *, quiet_text: str | None = None) -> None:
        """Prints the command's result: JSON `data`, or `text` (`quiet_text` when quiet)."""
        if self.json:  # json.dumps escapes every control character
            click.echo(json.dumps(data, indent=2, default=json_default))
        elif self.quiet:
            if quiet_text:
                click.echo(terminal_safe(quiet_text))
        elif text:
            click.echo(terminal_safe(text))

    @contextlib.contextmanager
    def working(self):
        """Runs library work with its prints (Keras progress bars) sent to stderr.

        Keeps stdout for the result; when quiet, the prints are dropped.
        """
        with contextlib.redirect_stdout(io.StringIO() if self.quiet else sys.stderr):
            yield

    def progress(self, iterable, *, label: str, length: int | None = None):
        """A click progress bar on stderr (a plain iterator when quiet)."""
        if self.quiet:
            return contextlib.nullcontext(iterable)
        return click.progressbar(iterable, label=label, length=length, file=sys.stderr)


def output_options(func):
    """Adds ``--quiet``, ``--json`` and ``--debug`` to a command (as ``out: Output``)."""

    @click.option("--debug", is_flag=True, default=False,
                  help="Show full tracebacks and TensorFlow's log lines. Example: --debug")
    @click.option("--json", "json_mode", is_flag=True, default=False,
                  help="Print the result as one JSON document on stdout. Example: --json")
    @click.option("--quiet", "-q", is_flag=True, default=False,
                  help="No progress or status lines; print only the essential result. "
                       "Example: --quiet")
    @functools.wraps(func)
    def wrapper(*args, quiet, json_mode, debug, **kwargs):
        out = Output(quiet=quiet, json=json_mode, debug=debug)
        with handle_errors(out):
            return func(*args, out=out, **kwargs)

    return wrapper


@contextlib.contextmanager
def handle_errors(out: Output):
    """Turns exceptions into exit codes and short messages (full traceback with ``--debug``)."""
    previous = warnings.showwarning
    if not out.debug:
        warnings.showwarning = _show_warning
    # Without --debug, C++ log lines written straight to descriptor 2 are dropped.
    silence = contextlib.nullcontext() if out.debug else _python_stderr_kept()
    try:
        with silence:
            yield
    except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
        raise
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        raise click.exceptions.Exit(EXIT_INTERRUPTED) from None
    except Exception as error:  # noqa: BLE001 (every failure becomes exit code 1)
        if out.debug:
            raise
        raise CliFailure(short_message(error), json_mode=out.json) from None
    finally:
        warnings.showwarning = previous


def comma_list(text: str) -> list[str]:
    """Splits ``"int8, float16"`` into ``["int8", "float16"]``."""
    return [part.strip() for part in str(text).split(",") if part.strip()]


def kerastl_command() -> list[str]:
    """The argv prefix that runs the installed ``kerastl`` command in a fresh process.

    The console script next to this Python, else one on ``PATH``, else
    ``python -m kerastl.cli`` (for tests and benchmarks that run the real entry point).
    """
    from pathlib import Path

    script = Path(sys.executable).with_name("kerastl")
    if script.is_file():
        return [str(script)]
    found = shutil.which("kerastl")
    return [found] if found else [sys.executable, "-m", "kerastl.cli"]
