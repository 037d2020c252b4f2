"""The names of `kerastl.adapt.fit`'s methods (no TensorFlow import: the CLI reads them)."""

METHODS = ("auto", "source_only", "adabn", "tent", "coral", "deep_coral", "mmd", "dann",
           "daume", "fine_tune_target")
# The order "auto" tries (the first within 1 point of source validation accuracy
# is kept): cheapest first, by the seconds benchmarks/adapt_benchmark.py measured.
# DANN and Deep CORAL are not in it: they kept source validation accuracy and lost
# 6-15 points of target accuracy on both shift sets (benchmarks/README.md, "Domain
# adaptation"), which the source-side rule cannot see. Nor is TENT: it costs what
# AdaBN costs in source accuracy and gained no more.
AUTO_ORDER = ("coral", "mmd", "adabn")
# The weights of the coloured copies "auto" tries CORAL at, strongest first, before the
# next method: a head between CORAL's and the source-only one when full CORAL costs more
# than 1 point of source validation accuracy (benchmarks/README.md, "CORAL's weight").
CORAL_WEIGHTS = (1.0, 0.5, 0.25)
LABELLED_TARGET = ("daume", "fine_tune_target")
DEEP = ("deep_coral", "mmd", "dann")

__all__ = ["AUTO_ORDER", "CORAL_WEIGHTS", "DEEP", "LABELLED_TARGET", "METHODS"]
