"""Tests of kerastl.export."""
