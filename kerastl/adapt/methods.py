"""The names of `kerastl.adapt.fit`'s methods (no TensorFlow import: the CLI reads them)."""

METHODS = ("auto", "source_only", "adabn", "tent", "coral", "deep_coral", "mmd", "dann",
           "daume", "fine_tune_target")
# The order "auto" tries (the first within 1 point of source validation accuracy
# is kept), from benchmarks/adapt_benchmark.py.
AUTO_ORDER = ("dann", "mmd", "coral", "adabn")
LABELLED_TARGET = ("daume", "fine_tune_target")
DEEP = ("deep_coral", "mmd", "dann")

__all__ = ["AUTO_ORDER", "DEEP", "LABELLED_TARGET", "METHODS"]
