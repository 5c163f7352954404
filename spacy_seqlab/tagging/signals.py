"""Auxiliary signals read from upstream annotations: one value per token, as ids.

A signal's ``source`` names where its values come from:

* any spaCy token attribute by its name in ``spacy.attrs``: lexical ones that every Doc has
  (``SHAPE``, ``IS_TITLE``, ``IS_UPPER``, ``LIKE_URL``, ``PREFIX``, ``SUFFIX``, ``LOWER``, ...: what an
  uncased encoder cannot see), and ones an upstream pipe sets (``POS``, ``TAG``, ``DEP``, ``LEMMA``,
  ``ENT_IOB``, ``ENT_TYPE``, ...);
* ``MORPH:Field``: one morphological feature, e.g. ``MORPH:Tense``;
* a span group: ``spans:KEY`` (e.g. ``spans:oie_rel``), read as BIO tags.

Values are mapped to ids through a vocabulary learned at initialize; id 0 is reserved for
values never seen there. Attributes are read for a whole batch at once (``Doc.to_array``, then
one ``numpy.unique``), with a Python step only per *distinct* value.
"""

from dataclasses import asdict, dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.attrs import IDS
from spacy.parts_of_speech import NAMES as UPOS_NAMES
from spacy.strings import StringStore
from spacy.tokens import Doc

from ..core.schemes import spans_to_tags
from ..core.settings import check_choice, check_int, check_number, from_config, setting

MODES = ("embed", "head", "both")
UNKNOWN = "<unk>"
_IOB_NAMES = {0: "", 1: "I", 2: "O", 3: "B"}
# Attributes that are no signal: positions, ids, constants, deprecated or free flags.
_NOT_SIGNALS = {"", "ID", "IDX", "LANG", "IS_OOV_DEPRECATED"}
TOKEN_ATTRS: Dict[str, int] = {
    name: attr_id for name, attr_id in IDS.items() if name not in _NOT_SIGNALS and not name.startswith("FLAG")
}
# Attributes whose values are string-store hashes; the others are small integers (flags, LENGTH, HEAD).
_HASHED = {"ORTH", "LOWER", "NORM", "SHAPE", "PREFIX", "SUFFIX", "LEMMA", "TAG", "DEP", "MORPH"}
_HASHED |= {"ENT_TYPE", "ENT_KB_ID", "ENT_ID"}
# The attributes an upstream pipe sets, and which pipe, for error messages; the others are lexical.
_WITH_A_TAGGER = "(e.g. sourced from a pipeline with a tagger, such as en_core_web_sm)"
_NER = "an 'ner' component (e.g. sourced from en_core_web_sm: [components.ner] source = \"en_core_web_sm\")"
PROVIDERS = {
    "POS": f"a 'tagger' + 'attribute_ruler' or a 'morphologizer' {_WITH_A_TAGGER}",
    "TAG": f"a 'tagger' {_WITH_A_TAGGER}",
    "DEP": "a 'parser' (e.g. sourced from a pipeline with a parser, such as en_core_web_sm)",
    "HEAD": "a 'parser' (e.g. sourced from a pipeline with a parser, such as en_core_web_sm)",
    "SENT_START": "a 'parser', 'senter' or 'sentencizer'",
    "LEMMA": "a 'lemmatizer' (e.g. sourced from en_core_web_sm, with its 'attribute_ruler' and 'tagger')",
    "ENT_IOB": _NER,
    "ENT_TYPE": _NER,
    "ENT_KB_ID": "an 'entity_linker'",
    "ENT_ID": "an 'entity_ruler' with pattern ids",
    "MORPH": f"a 'morphologizer' or 'tagger' + 'attribute_ruler' {_WITH_A_TAGGER}",
}
# The annotation Doc.has_annotation checks for an attribute that an upstream pipe sets.
_ANNOTATION = {"ENT_TYPE": "ENT_IOB", "ENT_KB_ID": "ENT_IOB", "HEAD": "DEP"}
LEXICAL = sorted(set(TOKEN_ATTRS) - set(PROVIDERS))


class MissingSignalError(ValueError):
    """A Doc lacks the upstream annotation a signal reads.

    The model raises it without knowing which component it belongs to; the pipe re-raises it
    :meth:`naming` itself.
    """

    def __init__(self, source: str, component: Optional[str] = None, detail: str = "") -> None:
        self.source, self.component, self.detail = source, component, detail
        super().__init__(missing_message(source, component) + detail)

    def naming(self, component: str) -> "MissingSignalError":
        return MissingSignalError(self.source, component, self.detail)

    def __reduce__(self) -> Any:  # for spaCy's worker processes
        return MissingSignalError, (self.source, self.component, self.detail)


@dataclass
class SignalSettings:
    """One auxiliary signal of ``spacy_seqlab.Tagger.v1``: a value per token read from upstream annotations."""

    source: str = setting(
        help="Where the values come from: a spaCy token attribute by name (lexical: SHAPE, IS_TITLE, IS_UPPER, "
        "LIKE_URL, PREFIX, SUFFIX, LOWER, ...; set by upstream pipes: POS, TAG, DEP, LEMMA, ENT_IOB, ENT_TYPE, ...), "
        "MORPH:Field, or spans:KEY."
    )
    mode: str = setting(
        "embed", "'embed' (input feature, needed at inference), 'head' (auxiliary loss, training only) or 'both'."
    )
    width: int = setting(50, "embed: size of the learned embedding of the signal's values.")
    learn_rate_factor: float = setting(1.0, "embed: the embedding's learning rate relative to the rest.")
    loss_weight: float = setting(
        1.0,
        "head: weight of the auxiliary loss, added to the primary loss (the paper's 0.5 x (primary + auxiliary) "
        "up to scale).",
    )

    def __post_init__(self) -> None:
        parse_source(self.source)
        check_choice("mode", self.mode, MODES)
        check_int("width", self.width)
        check_number("learn_rate_factor", self.learn_rate_factor, low=0, low_open=True)
        check_number("loss_weight", self.loss_weight, low=0)

    @classmethod
    def from_config(cls, name: str, value: Any) -> "SignalSettings":
        """The signal ``name`` from its config table; errors name the signal."""
        if isinstance(value, cls):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"Signal {name!r} must be a table of settings, got {value!r}")
        if "source" not in value:
            raise ValueError(f"Signal {name!r} needs a source: one of {', '.join(sources_help())}")
        try:
            return from_config(cls, value)
        except ValueError as err:
            raise ValueError(f"Signal {name!r}: {err}") from None

    @property
    def embeds(self) -> bool:
        return self.mode in ("embed", "both")

    @property
    def has_head(self) -> bool:
        return self.mode in ("head", "both")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def sources_help() -> List[str]:
    return [
        "a spaCy token attribute (e.g. SHAPE, IS_TITLE, IS_UPPER, LIKE_URL, POS, ENT_TYPE)",
        "MORPH:Field",
        "spans:KEY",
    ]


def parse_source(source: str) -> Dict[str, Optional[str]]:
    """``"MORPH:Tense"`` → {"attr": "MORPH", "feature": "Tense"}; ``"spans:k"`` → {"spans": "k"}."""
    if not isinstance(source, str):
        raise ValueError(f"Signal source must be a string, got {source!r}")
    if source.startswith("spans:") and source[6:].strip():
        return {"attr": None, "feature": None, "spans": source[6:]}
    attr, _, feature = source.partition(":")
    if attr not in TOKEN_ATTRS:
        raise ValueError(
            f"Unknown signal source {source!r}: {attr!r} is not a spaCy token attribute usable as a signal; expected "
            f"one of {', '.join(sources_help())}. Lexical attributes: {', '.join(LEXICAL)}; set by upstream pipes: "
            f"{', '.join(PROVIDERS)}"
        )
    if (attr == "MORPH") != bool(feature):
        raise ValueError(
            f"Unknown signal source {source!r}: MORPH needs a feature (MORPH:Field, e.g. MORPH:Tense) and no other "
            "attribute takes one"
        )
    return {"attr": attr, "feature": feature or None, "spans": None}


def has_signal(doc: Doc, source: str) -> bool:
    """Whether ``doc`` carries the annotation ``source`` reads (an empty Doc, and lexical attributes, always do)."""
    if not len(doc):
        return True
    parsed = parse_source(source)
    if parsed["spans"] is not None:
        return parsed["spans"] in doc.spans
    attr = parsed["attr"]
    if attr not in PROVIDERS:
        return True
    return doc.has_annotation(_ANNOTATION.get(attr, attr))


def missing_message(source: str, component: Optional[str] = None) -> str:
    """What to add to the pipeline for a Doc that lacks ``source`` (``component``: the reader, if known)."""
    parsed = parse_source(source)
    if parsed["spans"] is not None:
        provider = (
            "'seqlab_oie'" if parsed["spans"] == "oie_rel" else f"a component that sets doc.spans[{parsed['spans']!r}]"
        )
    else:
        provider = PROVIDERS[parsed["attr"]]
    reader, before = (f"Component '{component}'", f"'{component}'") if component else ("A tagger", "it")
    return (
        f"{reader} reads the signal {source!r}, which this Doc lacks: add {provider} before {before} in the "
        "pipeline (and list it in [training] annotating_components when training)"
    )


def _attr_names(
    strings: StringStore, raw: numpy.ndarray, attr: str, feature: Optional[str]
) -> Tuple[List[str], numpy.ndarray]:
    """Raw attribute values (``Doc.to_array``) → the name of each distinct value, and each token's index into them."""
    uniques, inverse = numpy.unique(raw.astype(numpy.uint64), return_inverse=True)
    if attr in _HASHED:
        names = [strings[int(u)] if u else "" for u in uniques]  # a step per distinct value
        if attr == "MORPH":
            names = [
                dict(f.split("=", 1) for f in text.split("|") if "=" in f).get(feature or "", "") for text in names
            ]
    else:  # small integers (HEAD and SENT_START may be negative)
        values = uniques.view(numpy.int64)
        table = UPOS_NAMES if attr == "POS" else _IOB_NAMES if attr == "ENT_IOB" else None
        names = [table.get(int(v), "") if table is not None else str(int(v)) for v in values]
    return names, inverse.reshape(-1)


def _batch_names(docs: Sequence[Doc], source: str) -> Tuple[List[str], numpy.ndarray]:
    """The signal's values over ``docs`` (concatenated): distinct names and each token's index into them."""
    parsed = parse_source(source)
    if parsed["spans"] is not None:
        values = [v for doc in docs for v in _span_values(doc, parsed["spans"])]
        names, inverse = numpy.unique(numpy.array(values, dtype=str), return_inverse=True)
        return [str(n) for n in names], inverse.reshape(-1)
    attr_id = TOKEN_ATTRS[parsed["attr"]]
    arrays = [doc.to_array(attr_id) for doc in docs if len(doc)]
    raw = numpy.concatenate(arrays) if arrays else numpy.zeros(0, dtype=numpy.uint64)
    strings = docs[0].vocab.strings if docs else StringStore()
    return _attr_names(strings, raw, parsed["attr"], parsed["feature"])


def signal_values(doc: Doc, source: str) -> List[str]:
    """The signal's value for every token of ``doc`` as strings (``""`` where a token has none)."""
    names, inverse = _batch_names([doc], source)
    return [names[i] for i in inverse]


def _span_values(doc: Doc, key: str) -> List[str]:
    spans = [(s.start, s.end, s.label_) for s in doc.spans[key]] if key in doc.spans else []
    return spans_to_tags(len(doc), _non_overlapping(spans), "iob2")


def _non_overlapping(spans: Sequence[tuple]) -> List[tuple]:
    kept, end = [], -1
    for start, stop, label in sorted(spans, key=lambda s: (s[0], -(s[1] - s[0]))):
        if start >= end:
            kept.append((start, stop, label))
            end = stop
    return kept


class SignalVocab:
    """Values of one signal ↔ ids; id 0 is for values not seen at initialize."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values: List[str] = [UNKNOWN] + sorted(set(values) - {UNKNOWN})
        self.index = {v: i for i, v in enumerate(self.values)}

    def __len__(self) -> int:
        return len(self.values)

    def encode(self, values: Sequence[str], *, unknown: int = 0) -> numpy.ndarray:
        """Values → ids; unseen values get ``unknown`` (0 for inputs, -1 for gold to ignore)."""
        if not len(values):
            return numpy.zeros(0, dtype=numpy.int64)
        uniques, inverse = numpy.unique(numpy.array(values, dtype=str), return_inverse=True)
        mapped = numpy.array([self.index.get(str(u), unknown) for u in uniques], dtype=numpy.int64)
        return mapped[inverse.reshape(-1)]


# -- reading a batch ------------------------------------------------------------------------


def learn_values(docs: Iterable[Doc], source: str) -> List[str]:
    """The values ``source`` takes in ``docs`` (a signal's vocabulary); none of them carrying it is an error."""
    annotated = [doc for doc in docs if len(doc) and has_signal(doc, source)]
    if not annotated:
        raise MissingSignalError(source, detail=" (found in no training Doc)")
    names, _ = _batch_names(annotated, source)
    return sorted(set(names))


def signal_ids(docs: Sequence[Doc], source: str, vocab: "SignalVocab") -> numpy.ndarray:
    """Ids of every token of ``docs``, concatenated (the model's input); a Doc lacking the signal is an error."""
    for doc in docs:
        if not has_signal(doc, source):
            raise MissingSignalError(source)
    names, inverse = _batch_names(docs, source)
    return vocab.encode(names)[inverse] if len(inverse) else numpy.zeros(0, dtype=numpy.int64)


def signal_gold(doc: Doc, source: str, vocab: "SignalVocab") -> Optional[numpy.ndarray]:
    """Ids of ``doc``'s values as gold for an auxiliary head (-1: a value not in the vocabulary);
    ``None`` if the Doc lacks the signal."""
    if not has_signal(doc, source):
        return None
    names, inverse = _batch_names([doc], source)
    return vocab.encode(names, unknown=-1)[inverse] if len(inverse) else numpy.zeros(0, dtype=numpy.int64)
