"""`ExportConfig`: the checked options of one `kerastl.export` call.

All user input of `kerastl.export` is validated here, before anything is
written to disk, so a typo fails in milliseconds instead of after a minute of
conversion.
"""

from __future__ import annotations

import dataclasses
import re

from kerastl._validation import check_bool, check_int, check_one_of

FORMATS = ("saved_model", "keras", "tflite")
QUANTIZATIONS = ("float32", "dynamic", "float16", "int8")
# What `quantization=None` means without representative data: the
# quantizations that need no calibration (int8 is added when data is given).
NO_CALIBRATION_QUANTIZATIONS = ("float32", "dynamic", "float16")
VERBOSITY = (0, 1)

# A version is a single directory name: letters, digits, '.', '_' and '-', not
# starting with '.' (so it can be neither '.', '..' nor a hidden staging name).
_VERSION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_version(version) -> str | None:
    """Returns `version` as a directory name, or None for "next integer".

    Args:
        version: None, a non-negative int, or a string of letters, digits,
            ``.``, ``_`` and ``-`` that does not start with ``.``.

    Returns:
        The version as `str`, or None.

    Raises:
        ValueError: If the version could escape the export directory
            (path separators, ``..``) or is not a plain name.

    Example:
        >>> kerastl.export.config.check_version(3)
        '3'
    """
    if version is None:
        return None
    if isinstance(version, int) and not isinstance(version, bool):
        return str(check_int("version", version, minimum=0))
    if isinstance(version, str) and _VERSION_RE.fullmatch(version):
        return version
    raise ValueError(
        "`version` must be None, an integer >= 0 or a name of letters, digits, '.', '_' "
        "and '-' that does not start with '.' (no path separators, no '..'). "
        f"Received: version={version!r}")


def _check_choices(name: str, values, allowed) -> tuple:
    if isinstance(values, str):
        values = (values,)
    try:
        values = tuple(values)
    except TypeError:
        raise TypeError(f"`{name}` must be a string or a sequence of strings. "
                        f"Received: {name}={values!r}") from None
    if not values:
        raise ValueError(f"`{name}` must name at least one of {', '.join(map(repr, allowed))}. "
                         f"Received: {name}={values!r}")
    checked = [check_one_of(name, v, allowed) for v in values]
    return tuple(v for v in allowed if v in checked)  # canonical order, no duplicates


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """Validated options of `kerastl.export`.

    Args:
        formats: Subset of `FORMATS`, in canonical order.
        quantizations: Subset of `QUANTIZATIONS` (used when ``"tflite"`` is in
            `formats`), in canonical order.
        num_calibration_samples: Images drawn from `representative_data` for int8.
        version: Directory name of the version, or None for the next integer.
        overwrite: Whether an existing version may be replaced.
        verbose: 0 (silent) or 1 (progress lines and the final table).
    """

    formats: tuple
    quantizations: tuple
    num_calibration_samples: int
    version: str | None
    overwrite: bool
    verbose: int

    @property
    def tflite_quantizations(self) -> tuple:
        """The quantizations that are exported (empty without ``"tflite"``)."""
        return self.quantizations if "tflite" in self.formats else ()


def make_config(*, formats, quantization, representative_data, num_calibration_samples,
                version, overwrite, verbose) -> ExportConfig:
    """Checks the options of `kerastl.export` and returns an `ExportConfig`.

    Args:
        formats: Formats to write (see `FORMATS`).
        quantization: TFLite quantizations (see `QUANTIZATIONS`), or None for
            every quantization the data allows: `NO_CALIBRATION_QUANTIZATIONS`,
            plus ``"int8"`` when `representative_data` is given.
        representative_data: The calibration data (only its presence is checked).
        num_calibration_samples: Number of calibration images, >= 1.
        version: See `check_version`.
        overwrite: Whether an existing version may be replaced.
        verbose: 0 or 1.

    Returns:
        An `ExportConfig`.

    Raises:
        ValueError: On any invalid option, including int8 without representative data.

    Example:
        >>> cfg = kerastl.export.config.make_config(
        ...     formats=("tflite",), quantization="float16", representative_data=None,
        ...     num_calibration_samples=100, version=None, overwrite=False, verbose=0)
        >>> cfg.tflite_quantizations
        ('float16',)
    """
    formats = _check_choices("formats", formats, FORMATS)
    if quantization is None:
        quantization = (QUANTIZATIONS if representative_data is not None
                        else NO_CALIBRATION_QUANTIZATIONS)
    quantizations = _check_choices("quantization", quantization, QUANTIZATIONS)
    check_bool("overwrite", overwrite)
    config = ExportConfig(
        formats=formats,
        quantizations=quantizations,
        num_calibration_samples=check_int("num_calibration_samples", num_calibration_samples,
                                          minimum=1),
        version=check_version(version),
        overwrite=overwrite,
        verbose=int(check_one_of("verbose", verbose, VERBOSITY)),
    )
    if "int8" in config.tflite_quantizations and representative_data is None:
        raise ValueError(
            "int8 quantization needs `representative_data` to calibrate activation ranges "
            "(a tf.data.Dataset of images or (images, labels) batches, or an array of images "
            "in [0, 255], ideally ~100-500 training images). Pass representative_data=..., "
            "or leave 'int8' out, e.g. quantization=('float32', 'dynamic', 'float16'). "
            "Received: representative_data=None")
    return config
