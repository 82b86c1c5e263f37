"""Benchmarks: ``make bench`` (``python -m tests.bench``); not part of the test suite.

See ``tests/bench/__main__.py`` for what is measured and how.
"""
