"""Choosing the labeled demonstrations shown before a query in SIFT prompts.

A ``DemonstrationPool`` holds labeled texts (usually the training set) and picks ``n`` of
them for a query with one of three selectors:

* ``random``: a uniform draw, reproducible per (seed, query text): the same query always
  gets the same demonstrations, different queries get different ones. The query text is
  hashed with CRC-32, not Python's per-process salted ``hash``.
* ``similar``: the highest Okapi BM25 scores (k1 = 1.2, b = 0.75, idf
  ``log(1 + (N - df + 0.5) / (df + 0.5))``) between the query and each demonstration,
  over lowercased ``\\w+`` words; each distinct query word counts once. Equal scores,
  including zero, are ordered by pool index.
* ``dense``: the demonstrations with the most labeled spans; equal counts are ordered by a
  seeded random order, per query while training (``vary_ties``: a query does not always
  get the same few) and one for the whole pool at prediction, so that every query gets the
  same demonstrations and the prompts share their start (computed once, see
  :mod:`.generation`). A demonstration without spans is chosen only when too few others are left.

The returned indices are in prompt order: the most relevant demonstration comes LAST,
next to the query (for ``random`` the order is the draw's). A demonstration is never
chosen when it is the query itself (``exclude``, its pool index while training) or when
its text equals the query's text up to whitespace (duplicates would leak the answer).
"""

import re
import zlib
from dataclasses import dataclass, field
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
)

import numpy
from scipy import sparse
from spacy.tokens import Doc, Span

SELECTORS = ("random", "similar", "dense")

_WORD = re.compile(r"\w+")
_BM25_K1 = 1.2
_BM25_B = 0.75


@dataclass
class Demonstration:
    """A labeled text: ``spans`` are (start_char, end_char, label), end exclusive."""

    text: str
    spans: List[Tuple[int, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise TypeError(f"Demonstration text must be a str, got {type(self.text).__name__}")
        spans = []
        for item in self.spans:
            if len(item) != 3:
                raise ValueError(f"Demonstration span {item!r} must be (start_char, end_char, label)")
            start, end, label = item
            if not (
                isinstance(start, (int, numpy.integer))
                and isinstance(end, (int, numpy.integer))
                and 0 <= start < end <= len(self.text)
            ):
                raise ValueError(
                    f"Demonstration span {item!r} is not a non-empty character range of a text of length "
                    f"{len(self.text)}"
                )
            if not isinstance(label, str) or not label:
                raise ValueError(f"Demonstration span {item!r} needs a non-empty string label")
            spans.append((int(start), int(end), label))
        self.spans = sorted(spans)

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-serializable dict; ``from_dict`` reads it back."""
        return {"text": self.text, "spans": [[start, end, label] for start, end, label in self.spans]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Demonstration":
        """Read a dict written by ``to_dict`` (JSON turns the span tuples into lists)."""
        try:
            return cls(text=data["text"], spans=[tuple(span) for span in data.get("spans", [])])
        except (KeyError, TypeError) as err:
            raise ValueError(
                "Not a serialized Demonstration (expected {'text': str, 'spans': [[start, end, label], ...]}): "
                f"{data!r:.200}"
            ) from err


def _dedup_key(text: str) -> str:
    # Duplicate tweets can differ only in spacing; they would still leak the answer.
    return " ".join(text.split())


def _words(text: str) -> List[str]:
    return _WORD.findall(text.lower())


class DemonstrationPool:
    """Labeled demonstrations and the selectors that choose them for a query (see module docstring)."""

    def __init__(self, demos: Sequence[Demonstration], *, seed: int = 0) -> None:
        self.demos: List[Demonstration] = list(demos)
        for i, demo in enumerate(self.demos):
            if not isinstance(demo, Demonstration):
                raise TypeError(f"Pool item {i} is a {type(demo).__name__}, not a Demonstration")
        self.seed = int(seed)
        self.span_counts = numpy.array([len(demo.spans) for demo in self.demos], dtype=numpy.int64)
        self._by_text: Dict[str, List[int]] = {}
        for i, demo in enumerate(self.demos):
            self._by_text.setdefault(_dedup_key(demo.text), []).append(i)
        self._vocab, self._term_weights = self._bm25_index()

    def _bm25_index(self) -> Tuple[Dict[str, int], sparse.csr_matrix]:
        """Vocabulary and the (terms x demonstrations) matrix of BM25 term weights."""
        n_docs = len(self.demos)
        words = [_words(demo.text) for demo in self.demos]
        lengths = numpy.array([len(w) for w in words], dtype=numpy.int64)
        flat = [word for doc_words in words for word in doc_words]
        if not flat:
            return {}, sparse.csr_matrix((0, n_docs), dtype=numpy.float64)
        vocab, term_ids = numpy.unique(numpy.array(flat, dtype=object), return_inverse=True)
        doc_ids = numpy.repeat(numpy.arange(n_docs), lengths)
        # Duplicate (term, doc) entries are summed into term frequencies.
        tf = sparse.csr_matrix((numpy.ones(len(flat)), (term_ids.ravel(), doc_ids)), shape=(len(vocab), n_docs))
        tf.sum_duplicates()
        df = numpy.diff(tf.indptr)
        idf = numpy.log1p((n_docs - df + 0.5) / (df + 0.5))
        avg_length = lengths.mean() if lengths.mean() > 0 else 1.0
        doc_of_entry = tf.indices
        term_of_entry = numpy.repeat(numpy.arange(len(vocab)), df)
        norm = _BM25_K1 * (1 - _BM25_B + _BM25_B * lengths[doc_of_entry] / avg_length)
        tf.data = idf[term_of_entry] * tf.data * (_BM25_K1 + 1) / (tf.data + norm)
        return {word: i for i, word in enumerate(vocab.tolist())}, tf

    @classmethod
    def from_docs(
        cls, docs: Iterable[Doc], spans_of: Callable[[Doc], Iterable[Span]], seed: int = 0
    ) -> "DemonstrationPool":
        """A pool of ``docs``, labeled with the spans ``spans_of(doc)`` returns."""
        demos = [
            Demonstration(doc.text, [(span.start_char, span.end_char, span.label_) for span in spans_of(doc)])
            for doc in docs
        ]
        return cls(demos, seed=seed)

    def to_list(self) -> List[Dict[str, Any]]:
        """The demonstrations as JSON-serializable dicts (the index is rebuilt on loading)."""
        return [demo.to_dict() for demo in self.demos]

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]], seed: int = 0) -> "DemonstrationPool":
        """Read a pool written by ``to_list``."""
        return cls([Demonstration.from_dict(item) for item in items], seed=seed)

    def __len__(self) -> int:
        return len(self.demos)

    def __getitem__(self, index: int) -> Demonstration:
        return self.demos[index]

    # -- selection --------------------------------------------------------------------------

    def select(
        self, query_text: str, n: int, selector: str, *, exclude: Optional[int] = None, vary_ties: bool = True
    ) -> List[int]:
        """Indices of up to ``n`` demonstrations for ``query_text``, most relevant last.

        ``exclude``: the query's own pool index, if it is in the pool. Demonstrations whose
        text equals the query's (up to whitespace) are never chosen either. ``vary_ties``:
        ``dense`` breaks ties per query (true) or the same way for every query (false).
        """
        if selector not in SELECTORS:
            raise ValueError(f"Unknown demonstration selector {selector!r}; choose one of {', '.join(SELECTORS)}")
        if not isinstance(n, (int, numpy.integer)) or n < 0:
            raise ValueError(f"The number of demonstrations must be a non-negative integer, got {n!r}")
        if exclude is not None and not (isinstance(exclude, (int, numpy.integer)) and 0 <= exclude < len(self)):
            raise ValueError(f"exclude must be a pool index between 0 and {len(self) - 1}, got {exclude!r}")
        if n == 0 or not len(self):
            return []
        allowed = numpy.ones(len(self), dtype=bool)
        allowed[self._by_text.get(_dedup_key(query_text), [])] = False
        if exclude is not None:
            allowed[exclude] = False
        if selector == "random":
            # The draw's own order: no demonstration is more relevant than another.
            order = self._rng(query_text).permutation(len(self))
            return order[allowed[order]][:n].tolist()
        if selector == "similar":
            scores = self._bm25_scores(query_text)
            # A stable sort keeps pool order among equal scores.
            order = numpy.argsort(-scores, kind="stable")
        else:
            tie_break = self._rng(query_text if vary_ties else "").permutation(len(self))
            order = numpy.lexsort((tie_break, -self.span_counts))
        best = order[allowed[order]][:n]
        return best[::-1].tolist()

    def _rng(self, query_text: str) -> numpy.random.Generator:
        """A generator seeded by (pool seed, CRC-32 of the query): stable across processes."""
        return numpy.random.default_rng([self.seed % (1 << 64), zlib.crc32(query_text.encode("utf-8"))])

    def _bm25_scores(self, query_text: str) -> numpy.ndarray:
        """BM25 score of every demonstration for the query (each distinct word once)."""
        terms = sorted({self._vocab[word] for word in _words(query_text) if word in self._vocab})
        if not terms:
            return numpy.zeros(len(self))
        return numpy.asarray(self._term_weights[terms].sum(axis=0)).ravel()
