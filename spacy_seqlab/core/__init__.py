"""The shared core: label schemes, targets, sub-word alignment, windows and batch planning,
scoring, settings, safe serialization and the pipe base every seqlab component stands on.

Nothing here imports transformers; torch only for tensor serialization.
"""
