"""Where a component's labels live on a Doc: ``doc.ents``, ``doc.spans[KEY]``, ``token.tag_`` or ``token.pos_``.

A :class:`Target` reads gold labels from an :class:`~spacy.training.Example` (aligned to
the predicted tokenization, ``None`` where a token is misaligned or unannotated, so that
it is ignored by the loss rather than read as ``O``), reads a Doc's own annotation as
tags (for scoring), and writes predicted tag ids back to Docs.
"""

from dataclasses import dataclass
from typing import List, Optional, Sequence, Set

import numpy
from spacy.attrs import POS, TAG
from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.util import filter_spans

from .schemes import (
    OUTSIDE,
    SPAN_SCHEMES,
    TagSet,
    convert_tags,
    repair_tags,
    spans_to_tags,
    validate_scheme,
)
from .schemes import Span as SpanTuple

TARGET_FORMS = ("ents", "spans:KEY", "tag", "pos")


@dataclass(frozen=True)
class Target:
    """A parsed ``target`` setting: ``kind`` is ents, spans, tag or pos; ``key`` the span group key."""

    kind: str
    key: Optional[str] = None

    @classmethod
    def parse(cls, value: str) -> "Target":
        """Parse ``"ents"``, ``"spans:KEY"``, ``"tag"`` or ``"pos"``; anything else raises a ValueError."""
        if value in ("ents", "tag", "pos"):
            return cls(value)
        if isinstance(value, str) and value.startswith("spans:") and value[len("spans:") :].strip():
            return cls("spans", value[len("spans:") :])
        raise ValueError(f"Invalid target {value!r}: expected one of {', '.join(TARGET_FORMS)}")

    def __str__(self) -> str:
        return f"spans:{self.key}" if self.kind == "spans" else self.kind

    @property
    def is_span(self) -> bool:
        return self.kind in ("ents", "spans")

    @property
    def default_scheme(self) -> str:
        return "iob2" if self.is_span else "tags"

    def check_scheme(self, scheme: str) -> str:
        """Span targets need a span scheme; ``pos`` needs plain tags; ``tag`` takes any (chunk tags live there)."""
        validate_scheme(scheme)
        if self.is_span and scheme not in SPAN_SCHEMES:
            raise ValueError(
                f"Target {self} holds spans: scheme must be one of {', '.join(SPAN_SCHEMES)}, not {scheme!r}"
            )
        if self.kind == "pos" and scheme != "tags":
            raise ValueError(f"Target pos holds Universal POS tags: scheme must be 'tags', not {scheme!r}")
        return scheme

    # -- reading -------------------------------------------------------------------------

    def doc_spans(self, doc: Doc) -> List[SpanTuple]:
        """The Doc's own spans for this target, overlaps resolved by keeping the longest."""
        if self.kind == "ents":
            spans: Sequence[Span] = doc.ents
        elif self.kind == "spans":
            spans = filter_spans(doc.spans[self.key]) if self.key in doc.spans else []
        else:
            raise ValueError(f"Target {self} holds per-token tags, not spans")
        return [(s.start, s.end, s.label_) for s in spans]

    def doc_tags(self, doc: Doc, scheme: str) -> List[str]:
        """The Doc's own annotation as one tag per token (``O`` or ``""`` where there is none)."""
        if self.is_span:
            return spans_to_tags(len(doc), self.doc_spans(doc), scheme)
        return [t.tag_ if self.kind == "tag" else t.pos_ for t in doc]

    def labels_in(self, doc: Doc, scheme: str) -> Set[str]:
        """Labels annotated in ``doc`` (span labels, or the tag values themselves)."""
        if self.is_span:
            return {label for _, _, label in self.doc_spans(doc)}
        tags = {tag for tag in self.doc_tags(doc, scheme) if tag}
        if scheme in SPAN_SCHEMES:  # chunk tags stored in token.tag_
            return {tag.split("-", 1)[1] for tag in tags if tag != "O"}
        return tags

    def gold_tags(self, example: Example, scheme: str) -> List[Optional[str]]:
        """Gold tags aligned to ``example.predicted``; ``None`` marks tokens to ignore."""
        if self.kind == "ents":
            return convert_tags(example.get_aligned_ner(), scheme)
        if self.kind == "spans":
            if self.key not in example.reference.spans:
                return [None] * len(example.predicted)
            gold_spans = example.reference.spans[self.key]
            aligned = filter_spans(example.get_aligned_spans_y2x(gold_spans, allow_overlap=True))
            tags: List[Optional[str]] = list(
                spans_to_tags(len(example.predicted), [(s.start, s.end, s.label_) for s in aligned], scheme)
            )
            # "O" only where every aligned gold token is outside all gold spans (as get_aligned_ner
            # does): tokens of a span that does not align, or was dropped as an overlap, are unknown.
            in_gold_span = numpy.zeros(len(example.reference), dtype=bool)
            for span in gold_spans:
                in_gold_span[span.start : span.end] = True
            x2y = example.alignment.x2y
            links_in_span = numpy.bincount(
                numpy.repeat(numpy.arange(len(tags)), x2y.lengths), weights=in_gold_span[x2y.data], minlength=len(tags)
            )
            unknown = (x2y.lengths == 0) | (links_in_span > 0)
            return [None if tag == OUTSIDE and unknown[i] else tag for i, tag in enumerate(tags)]
        values = example.get_aligned("TAG" if self.kind == "tag" else "POS", as_string=True)
        return [value or None for value in values]

    # -- writing -------------------------------------------------------------------------

    def write(self, doc: Doc, tag_ids: numpy.ndarray, tagset: TagSet, *, repair: str = "strict") -> None:
        """Write one Doc's predicted tag ids (one per token) to this target."""
        if len(tag_ids) != len(doc):
            raise ValueError(f"Got {len(tag_ids)} predictions for a Doc of {len(doc)} tokens")
        if len(tag_ids) and (tag_ids.min() < 0 or tag_ids.max() >= len(tagset)):
            raise ValueError(f"Tag ids must be in [0, {len(tagset)}), got {tag_ids.min()}..{tag_ids.max()}")
        if self.is_span:
            self.write_spans(
                doc, [Span(doc, s, e, label=label) for s, e, label in tagset.decode_spans(tag_ids, repair=repair)]
            )
            return
        values = self._attr_values(doc, tagset)
        if tagset.is_span:  # chunk tags in token.tag_: store the well-formed reading
            tag_ids = tagset.encode(repair_tags([tagset.tags[i] for i in tag_ids], tagset.scheme, repair=repair))
        if len(doc):
            doc.from_array([TAG if self.kind == "tag" else POS], values[tag_ids].reshape(-1, 1))

    def write_spans(
        self, doc: Doc, spans: Sequence[Span], *, scores: Optional[numpy.ndarray] = None, scores_key: str = ""
    ) -> None:
        """Replace the Doc's annotation for this span target with ``spans`` (non-overlapping, in order).

        ``scores`` (one per span) are stored as spaCy's spancat stores them, in a span group's
        ``attrs["scores"]``: ``doc.spans[KEY]``'s own for ``spans:KEY``; for ``ents``, a group
        ``doc.spans[scores_key]`` holding the same spans as ``doc.ents``.
        """
        if scores is not None and len(scores) != len(spans):
            raise ValueError(f"Got {len(scores)} scores for {len(spans)} spans")
        attrs = {"scores": numpy.asarray(scores, dtype=numpy.float32)} if scores is not None else {}
        if self.kind == "ents":
            doc.set_ents(list(spans), default="outside")
            if scores is not None:
                if not scores_key:
                    raise ValueError("Span scores for target ents need a span group key (scores_key)")
                doc.spans[scores_key] = SpanGroup(doc, name=scores_key, spans=list(doc.ents), attrs=attrs)
        elif self.kind == "spans":
            doc.spans[self.key] = SpanGroup(doc, name=self.key, spans=list(spans), attrs=attrs)
        else:
            raise ValueError(f"Target {self} holds per-token tags, not spans")

    def _attr_values(self, doc: Doc, tagset: TagSet) -> numpy.ndarray:
        """The attribute value (string hash or UPOS id) of each tag id."""
        if self.kind == "pos":
            unknown = [tag for tag in tagset.tags if tag not in UPOS_IDS]
            if unknown:
                raise ValueError(f"Target pos needs Universal POS tags; not UPOS: {unknown}")
            return numpy.array([UPOS_IDS[tag] for tag in tagset.tags], dtype=numpy.uint64)
        return numpy.array([doc.vocab.strings.add(tag) for tag in tagset.tags], dtype=numpy.uint64)
