"""Label schemes: tag inventories and conversion between per-token tags and spans.

Spans are ``(start, end, label)`` token offsets, ``end`` exclusive. Two span schemes are
supported, IOB2 (``B``/``I``/``O``) and BIOES (``B``/``I``/``E``/``S``/``O``; spaCy's
BILUO spelling ``L``/``U`` is read as ``E``/``S``), plus ``tags`` for plain per-token
labels such as POS.

Reading tags back into spans needs a policy for ill-formed sequences:

* ``repair="strict"`` keeps only well-formed chunks, exactly what seqeval's strict mode
  counts: an ``I-X`` that does not continue an ``X`` chunk belongs to no span (and in
  BIOES a chunk must be ``S`` or ``B I* E``).
* ``repair="lenient"`` is conlleval's reading: an ``I-X`` that does not continue an ``X``
  chunk starts a new one. It also reads IOB1 input (CoNLL-2003's original files).

Chunking is vectorised with numpy: a sequence is cut into segments wherever a tag does
not continue the previous one, and each segment is kept or dropped by its first (and,
for strict BIOES, last) tag.
"""

from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy

SPAN_SCHEMES = ("iob2", "bioes")
SCHEMES = SPAN_SCHEMES + ("tags",)
REPAIRS = ("strict", "lenient")
OUTSIDE = "O"

Span = Tuple[int, int, str]

# Prefix codes used by the vectorised chunker.
_O, _B, _I, _E, _S = 0, 1, 2, 3, 4
_PREFIX_CODES: Dict[str, int] = {"B": _B, "I": _I, "E": _E, "S": _S, "L": _E, "U": _S}


def validate_scheme(scheme: str, *, allow_tags: bool = True) -> str:
    """Return ``scheme`` if it names a known scheme, else raise a ValueError naming the options."""
    allowed = SCHEMES if allow_tags else SPAN_SCHEMES
    if scheme not in allowed:
        raise ValueError(f"Unknown label scheme {scheme!r}: expected one of {', '.join(allowed)}")
    return scheme


def _validate_repair(repair: str) -> None:
    if repair not in REPAIRS:
        raise ValueError(f"Unknown repair mode {repair!r}: expected one of {', '.join(REPAIRS)}")


def tag_inventory(labels: Iterable[str], scheme: str) -> List[str]:
    """All tags of ``scheme`` over ``labels``: ``O`` first, then each label's tags in label order.

    For ``tags`` the labels are the tags themselves (order kept, duplicates dropped).
    """
    validate_scheme(scheme)
    unique = list(dict.fromkeys(labels))
    if scheme == "tags":
        return unique
    for label in unique:
        if not label or label == OUTSIDE:
            raise ValueError(f"Invalid span label {label!r}: labels must be non-empty and not 'O'")
    prefixes = "BI" if scheme == "iob2" else "BIES"
    return [OUTSIDE] + [f"{p}-{label}" for label in unique for p in prefixes]


def split_tag(tag: str) -> Tuple[str, str]:
    """``"B-PER"`` → ``("B", "PER")``; ``"O"`` → ``("O", "")``. Raises ValueError on anything else."""
    if tag == OUTSIDE:
        return OUTSIDE, ""
    prefix, sep, label = tag.partition("-")
    if not sep or not label or prefix not in _PREFIX_CODES:
        raise ValueError(f"Ill-formed tag {tag!r}: expected 'O' or PREFIX-LABEL with PREFIX in B, I, E, S, L, U")
    return prefix, label


def detect_scheme(tags: Iterable[str]) -> str:
    """``"bioes"`` if any tag uses an E/S/L/U prefix, else ``"iob2"``; raises on ill-formed tags."""
    found = "iob2"
    for tag in tags:
        prefix, _ = split_tag(tag)
        if prefix in ("E", "S", "L", "U"):
            found = "bioes"
    return found


def _encode(tags: Sequence[str]) -> Tuple[numpy.ndarray, numpy.ndarray, List[str]]:
    """Tags → (prefix codes, label ids, label names)."""
    label_ids: Dict[str, int] = {}
    prefixes = numpy.zeros(len(tags), dtype=numpy.int8)
    labels = numpy.full(len(tags), -1, dtype=numpy.int64)
    for i, tag in enumerate(tags):
        prefix, label = split_tag(tag)
        if prefix != OUTSIDE:
            prefixes[i] = _PREFIX_CODES[prefix]
            labels[i] = label_ids.setdefault(label, len(label_ids))
    return prefixes, labels, list(label_ids)


def chunk_codes(
    prefixes: numpy.ndarray, labels: numpy.ndarray, scheme: str = "iob2", *, repair: str = "strict"
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Chunk encoded tags: returns (starts, ends, label ids) of the spans, ``ends`` exclusive.

    ``prefixes`` holds codes O=0, B=1, I=2, E=3, S=4; ``labels`` label ids (any value where O).
    """
    validate_scheme(scheme, allow_tags=False)
    _validate_repair(repair)
    n = len(prefixes)
    if n == 0:
        empty = numpy.zeros(0, dtype=numpy.int64)
        return empty, empty, empty
    if scheme == "iob2":
        # Read E as I and S as B, so BIOES tags given to an IOB2 reader still chunk sensibly.
        prefixes = numpy.where(prefixes == _E, _I, numpy.where(prefixes == _S, _B, prefixes))
    prev_p = numpy.concatenate([[_O], prefixes[:-1]])
    prev_l = numpy.concatenate([[-1], labels[:-1]])
    opens = (prev_p == _B) | (prev_p == _I)
    continues = (prefixes == _I) & opens & (labels == prev_l)
    if scheme == "bioes":
        continues |= (prefixes == _E) & opens & (labels == prev_l)
    seg_starts = numpy.flatnonzero(~continues)
    seg_ends = numpy.concatenate([seg_starts[1:], [n]])
    first = prefixes[seg_starts]
    if repair == "strict":
        keep = first == _B if scheme == "iob2" else (first == _B) | (first == _S)
        if scheme == "bioes":
            last = prefixes[seg_ends - 1]
            length = seg_ends - seg_starts
            keep &= ((first == _S) & (length == 1)) | ((first == _B) & (last == _E) & (length > 1))
    else:
        keep = first != _O
    return seg_starts[keep].astype(numpy.int64), seg_ends[keep].astype(numpy.int64), labels[seg_starts[keep]]


def tags_to_spans(tags: Sequence[str], scheme: str = "iob2", *, repair: str = "strict") -> List[Span]:
    """Read span tags into ``(start, end, label)`` spans, in order (see module docstring for ``repair``)."""
    prefixes, labels, names = _encode(tags)
    starts, ends, label_ids = chunk_codes(prefixes, labels, scheme, repair=repair)
    return [(int(s), int(e), names[int(lab)]) for s, e, lab in zip(starts, ends, label_ids)]


def spans_to_tags(n_tokens: int, spans: Iterable[Span], scheme: str = "iob2") -> List[str]:
    """Write non-overlapping spans as ``n_tokens`` tags of ``scheme``; overlaps raise a ValueError."""
    validate_scheme(scheme, allow_tags=False)
    tags = [OUTSIDE] * n_tokens
    for start, end, label in sorted(spans):
        if not 0 <= start < end <= n_tokens:
            raise ValueError(f"Span ({start}, {end}, {label!r}) is out of range for {n_tokens} tokens")
        if any(tag != OUTSIDE for tag in tags[start:end]):
            raise ValueError(f"Span ({start}, {end}, {label!r}) overlaps another span")
        if scheme == "bioes" and end - start == 1:
            tags[start] = f"S-{label}"
            continue
        tags[start] = f"B-{label}"
        tags[start + 1 : end] = [f"I-{label}"] * (end - start - 1)
        if scheme == "bioes":
            tags[end - 1] = f"E-{label}"
    return tags


def repair_tags(tags: Sequence[str], scheme: str = "iob2", *, repair: str = "strict") -> List[str]:
    """Rewrite ``tags`` as the well-formed sequence that ``repair`` reads them as."""
    return spans_to_tags(len(tags), tags_to_spans(tags, scheme, repair=repair), scheme)


def convert_tags(tags: Sequence[Optional[str]], scheme: str) -> List[Optional[str]]:
    """Convert IOB2/BIOES/BILUO tags to ``scheme``, keeping ``None`` (missing) where it stands.

    Missing tags split the sequence: each run of known tags is converted on its own, so
    a span never crosses a missing token. Used on ``Example.get_aligned_ner()`` output.
    """
    validate_scheme(scheme, allow_tags=False)
    out: List[Optional[str]] = [None] * len(tags)
    known = [i for i, tag in enumerate(tags) if tag is not None and tag != "-"]
    runs: List[List[int]] = []
    for i in known:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    for run in runs:
        source = [tags[i] for i in run]
        converted = spans_to_tags(len(run), tags_to_spans(source, detect_scheme(source), repair="lenient"), scheme)
        for i, tag in zip(run, converted):
            out[i] = tag
    return out


def _ranges(lengths: numpy.ndarray) -> numpy.ndarray:
    """``[0..l0-1, 0..l1-1, ...]`` for the given lengths, without a Python loop."""
    total = int(lengths.sum())
    offsets = numpy.repeat(numpy.cumsum(lengths) - lengths, lengths)
    return numpy.arange(total) - offsets


class TagSet:
    """The tags of one scheme over a fixed label set, with the index arrays decoding needs.

    Tag ids are positions in :attr:`tags`; for span schemes id 0 is ``O``.
    """

    def __init__(self, labels: Iterable[str], scheme: str = "iob2") -> None:
        self.scheme = validate_scheme(scheme)
        self.tags: List[str] = tag_inventory(labels, scheme)
        self.labels: List[str] = list(dict.fromkeys(labels))
        self.index: Dict[str, int] = {tag: i for i, tag in enumerate(self.tags)}
        self.is_span = scheme in SPAN_SCHEMES
        if self.is_span:
            label_index = {label: i for i, label in enumerate(self.labels)}
            parts = [split_tag(tag) for tag in self.tags]
            self.prefix_codes = numpy.array(
                [_O if p == OUTSIDE else _PREFIX_CODES[p] for p, _ in parts], dtype=numpy.int8
            )
            self.label_ids = numpy.array([label_index.get(lab, -1) for _, lab in parts], dtype=numpy.int64)

    def __len__(self) -> int:
        return len(self.tags)

    def encode(self, tags: Sequence[Optional[str]], *, unknown: str = "error") -> numpy.ndarray:
        """Tags → ids; ``None`` (missing) → -1. An unknown tag raises, or becomes -1 with ``unknown="missing"``."""
        ids = numpy.empty(len(tags), dtype=numpy.int64)
        for i, tag in enumerate(tags):
            if tag is None:
                ids[i] = -1
            elif tag in self.index:
                ids[i] = self.index[tag]
            elif unknown == "missing":
                ids[i] = -1
            else:
                raise ValueError(
                    f"Unknown tag {tag!r} for labels {self.labels}: add the label at initialize "
                    f"(labels in [initialize.components]) or check the training data"
                )
        return ids

    def chunks(
        self, ids: numpy.ndarray, *, repair: str = "strict"
    ) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """Tag ids of one document → the spans' (starts, ends, label ids) (span schemes only)."""
        if not self.is_span:
            raise ValueError(f"Scheme {self.scheme!r} has no spans")
        return chunk_codes(self.prefix_codes[ids], self.label_ids[ids], self.scheme, repair=repair)

    def decode_spans(self, ids: numpy.ndarray, *, repair: str = "strict") -> List[Span]:
        """Tag ids of one document → spans (span schemes only)."""
        starts, ends, label_ids = self.chunks(ids, repair=repair)
        return [(int(s), int(e), self.labels[int(lab)]) for s, e, lab in zip(starts, ends, label_ids)]

    def span_tag_ids(
        self, n_tokens: int, starts: numpy.ndarray, ends: numpy.ndarray, label_ids: numpy.ndarray
    ) -> numpy.ndarray:
        """The well-formed tag ids of ``n_tokens`` tokens holding exactly these non-overlapping spans
        (the inverse of :meth:`chunks`), vectorised over the spans."""
        prefixes = "BI" if self.scheme == "iob2" else "BIES"
        ids = numpy.zeros(n_tokens, dtype=numpy.int64)
        lengths = numpy.asarray(ends) - numpy.asarray(starts)
        # Tag id of PREFIX-label: 1 + label * len(prefixes) + position of PREFIX (see tag_inventory).
        base = 1 + numpy.asarray(label_ids, dtype=numpy.int64) * len(prefixes)
        positions = numpy.repeat(numpy.asarray(starts), lengths) + _ranges(lengths)
        ids[positions] = numpy.repeat(base + prefixes.index("I"), lengths)
        ids[starts] = base + prefixes.index("B")
        if self.scheme == "bioes":
            ids[numpy.asarray(ends) - 1] = numpy.where(
                lengths == 1, base + prefixes.index("S"), base + prefixes.index("E")
            )
        return ids

    def continuation_mask(self) -> numpy.ndarray:
        """``continues[prev, next]``: ``next`` extends the chunk that ``prev`` leaves open (``I-X`` or
        ``E-X`` after ``B-X`` or ``I-X``); all False for plain tags."""
        k = len(self.tags)
        if not self.is_span:
            return numpy.zeros((k, k), dtype=bool)
        p, lab = self.prefix_codes, self.label_ids
        opens_prev = (p[:, None] == _B) | (p[:, None] == _I)
        inside_next = (p[None, :] == _I) | (p[None, :] == _E)
        return opens_prev & inside_next & (lab[:, None] == lab[None, :])

    def transition_mask(self) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """Which tag sequences are well-formed: (allowed[prev, next], allowed_first, allowed_last).

        Everything is allowed for plain tags. The taggers' ``viterbi`` and ``crf`` decoders search
        only these sequences; ``argmax`` takes each token's best tag and reads an ill-formed
        sequence with the ``repair`` policy (:meth:`decode_spans`).
        """
        k = len(self.tags)
        if not self.is_span:
            ones = numpy.ones(k, dtype=bool)
            return numpy.ones((k, k), dtype=bool), ones, ones
        p, lab = self.prefix_codes, self.label_ids
        same = lab[:, None] == lab[None, :]
        inside_next = (p[None, :] == _I) | (p[None, :] == _E)
        opens_prev = (p[:, None] == _B) | (p[:, None] == _I)
        # A continuation tag needs an open chunk of its label before it; an open chunk
        # must be continued in BIOES (it has to end with E).
        allowed = numpy.where(inside_next, opens_prev & same, True)
        if self.scheme == "bioes":
            allowed &= numpy.where(opens_prev, inside_next & same, True)
            first = (p != _I) & (p != _E)
            last = (p != _B) & (p != _I)
        else:
            first = p != _I
            last = numpy.ones(k, dtype=bool)
        return allowed, first, last
