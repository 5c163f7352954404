"""Annotate large corpora with any spaCy pipeline, on Ray Data or in-process, with nothing lost.

* :mod:`.settings`: ``AnnotateSettings``, every option of the ``annotate`` command, checked once.
* :mod:`.inputs`: JSONL / Parquet / plain-text files, a folder or a glob → rows (id, text, source, error)
  cut into shards; a row that cannot be read becomes a row with an error, never a dropped line.
* :mod:`.annotator`: ``Annotator``, the callable class a Ray actor (or the local engine) holds: it loads the
  pipeline once and turns a batch of rows into Arrow columns (id, span records, error, optional DocBin).
* :mod:`.output`: the output folder: a manifest, one file per finished shard (written atomically), resume.
* :mod:`.engines`: the Ray engine (``map_batches`` over an actor pool) and the local engine, one code path.
"""

from .engines import annotate
from .output import read_output
from .settings import AnnotateSettings

__all__ = ["AnnotateSettings", "annotate", "read_output"]
