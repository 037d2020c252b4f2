"""The names of `kerastl.adapt.fit`'s methods (no TensorFlow import: the CLI reads them)."""

METHODS = ("auto", "source_only", "adabn", "tent", "coral", "deep_coral", "mmd", "dann",
           "daume", "fine_tune_target")
# The order "auto" tries (the first within 1 point of source validation accuracy
# is kept): cheapest first, by the seconds benchmarks/adapt_benchmark.py measured.
AUTO_ORDER = ("coral", "dann", "mmd", "adabn")
LABELLED_TARGET = ("daume", "fine_tune_target")
DEEP = ("deep_coral", "mmd", "dann")

__all__ = ["AUTO_ORDER", "DEEP", "LABELLED_TARGET", "METHODS"]
