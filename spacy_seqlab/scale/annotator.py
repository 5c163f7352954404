"""The per-actor annotator: loads a pipeline once, then turns batches of rows into Arrow columns.

``Annotator`` is the callable class given to Ray Data's ``map_batches`` (one instance per actor) and
called directly by the local engine. Each Doc becomes records ``(layer, start_char, end_char, label,
score)``: its entities (layer ``ents``), every span group (``spans:KEY``; score from the group's
``attrs["scores"]`` where the component sets one, as spancat does) and its token tags (``tag``,
``pos``). A document that fails gets an error and no records; the batch goes on.
"""

import importlib.util
import os
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pyarrow

RECORD_TYPE = pyarrow.struct(
    [
        ("layer", pyarrow.string()),
        ("start_char", pyarrow.int64()),
        ("end_char", pyarrow.int64()),
        ("label", pyarrow.string()),
        ("score", pyarrow.float64()),
    ]
)
Record = Tuple[str, int, int, str, Optional[float]]


def output_schema(docbin: bool) -> pyarrow.Schema:
    """The columns of an annotated row (``shard`` and ``row`` are dropped when a shard is written)."""
    fields = [
        ("id", pyarrow.string()),
        ("source", pyarrow.string()),
        ("records", pyarrow.list_(RECORD_TYPE)),
        ("error", pyarrow.string()),
        ("shard", pyarrow.int64()),
        ("row", pyarrow.int64()),
    ]
    return pyarrow.schema(fields + ([("docbin", pyarrow.binary())] if docbin else []))


def _scores(group: Any) -> Optional[Sequence[float]]:
    scores = group.attrs.get("scores") if hasattr(group, "attrs") else None
    return scores if scores is not None and len(scores) == len(group) else None


def doc_records(doc: Any) -> List[Record]:
    """A Doc's entities, span groups and token tags as ``(layer, start_char, end_char, label, score)``."""
    records: List[Record] = [("ents", e.start_char, e.end_char, e.label_, None) for e in doc.ents]
    for key, group in doc.spans.items():
        scores = _scores(group)
        records.extend(
            (f"spans:{key}", s.start_char, s.end_char, s.label_, None if scores is None else float(scores[i]))
            for i, s in enumerate(group)
        )
    if doc.has_annotation("TAG"):
        records.extend(("tag", t.idx, t.idx + len(t), t.tag_, None) for t in doc if t.tag_)
    if doc.has_annotation("POS"):
        records.extend(("pos", t.idx, t.idx + len(t), t.pos_, None) for t in doc if t.pos_)
    return records


def import_code(path: Optional[str]) -> None:
    """Import a Python file registering custom components (as ``spacy ... --code`` does), once per process."""
    if not path:
        return
    name = f"seqlab_user_code_{abs(hash(os.path.abspath(path)))}"
    if name in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ValueError(f"code: cannot import {path!r} (not a Python file)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def _set_threads(threads: int) -> None:
    # Each actor runs with the CPUs it reserved: more torch threads than that only oversubscribe the cores.
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(threads)


class Annotator:
    """Loads ``pipeline`` once; each call annotates one batch of input rows (an Arrow table)."""

    def __init__(
        self, pipeline: str, *, threads: int = 1, gpu: bool = False, docbin: bool = False, code: Optional[str] = None
    ) -> None:
        import spacy

        _set_threads(threads)
        import_code(code)
        if gpu:
            spacy.require_gpu()
        self.nlp = spacy.load(pipeline)
        self.docbin = docbin
        self.schema = output_schema(docbin)

    def __call__(self, batch: pyarrow.Table) -> pyarrow.Table:
        rows = batch.to_pydict()
        n = len(rows["id"])
        errors: List[Optional[str]] = list(rows["error"])
        texts: List[Optional[str]] = list(rows["text"])
        for i, text in enumerate(texts):
            if errors[i] is None and text is not None and len(text) > self.nlp.max_length:
                errors[i] = (
                    f"text of {len(text):,} characters is over the pipeline's max_length {self.nlp.max_length:,}"
                )
        todo = [i for i in range(n) if errors[i] is None and texts[i] is not None]
        docs = self._annotate([texts[i] for i in todo])
        records: List[List[Dict[str, Any]]] = [[] for _ in range(n)]
        blobs: List[Optional[bytes]] = [None] * n
        for i, (doc, error) in zip(todo, docs):
            if error is None:
                try:
                    records[i] = [dict(zip(RECORD_TYPE.names, r)) for r in doc_records(doc)]
                    blobs[i] = self._docbin(doc) if self.docbin else None
                except Exception as failure:  # a broken annotation costs one row, not the job
                    error = f"{type(failure).__name__}: {failure}"
            errors[i] = error
        columns = {
            "id": rows["id"],
            "source": rows["source"],
            "records": records,
            "error": errors,
            "shard": rows["shard"],
            "row": rows["row"],
        }
        if self.docbin:
            columns["docbin"] = blobs
        return pyarrow.table(columns, schema=self.schema)

    def _annotate(self, texts: List[str]) -> List[Tuple[Any, Optional[str]]]:
        """``nlp.pipe`` over the batch; when it fails, each text alone, so only the failing ones get an error."""
        try:
            return [(doc, None) for doc in self.nlp.pipe(texts, batch_size=max(1, len(texts)))]
        except Exception:
            pass
        results: List[Tuple[Any, Optional[str]]] = []
        for text in texts:
            try:
                results.append((self.nlp(text), None))
            except Exception as failure:
                results.append((None, f"{type(failure).__name__}: {failure}"))
        return results

    def _docbin(self, doc: Any) -> bytes:
        from spacy.tokens import DocBin

        return DocBin(docs=[doc], store_user_data=True).to_bytes()
