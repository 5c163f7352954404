"""``seqlab_oie``: the pipeline component around the rule-based open information extractor.

Each Doc's triples (:func:`spacy_seqlab.oie.extraction.extract_triples`) are written as relation
spans to ``doc.spans[spans_key]``, the auxiliary signal a multi-task tagger reads as BIO tags
(``spans:oie_rel``), and as dicts (:meth:`spacy_seqlab.oie.triples.Triple.to_dict`) to
``doc._.oie_triples``. The component needs a tagger and a parser before it; it has no weights,
so it saves only its settings.
"""

from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Union

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span, SpanGroup
from spacy.util import ensure_path

from .extraction import extract_triples, validate_max_relation_length

TRIPLES_EXTENSION = "oie_triples"
CFG_FILENAME = "cfg.json"

if not Doc.has_extension(TRIPLES_EXTENSION):
    Doc.set_extension(TRIPLES_EXTENSION, default=None)


def _validate_non_empty_string(setting: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"seqlab_oie: {setting} must be a non-empty string, got {value!r}")
    return value


class OpenIEExtractor(Pipe):
    """Writes relation spans to ``doc.spans[spans_key]`` and the triples to ``doc._.oie_triples``."""

    def __init__(
        self, name: str = "seqlab_oie", *, spans_key: str = "oie_rel", max_relation_length: int = 5, label: str = "REL"
    ) -> None:
        self.name = name
        self.cfg: Dict[str, Any] = self._validated_cfg(
            {"spans_key": spans_key, "max_relation_length": max_relation_length, "label": label}
        )

    @staticmethod
    def _validated_cfg(cfg: Dict[str, Any]) -> Dict[str, Any]:
        missing = {"spans_key", "max_relation_length", "label"} - set(cfg)
        if missing:
            raise ValueError(f"seqlab_oie: settings missing from the stored config: {sorted(missing)}")
        return {
            "spans_key": _validate_non_empty_string("spans_key", cfg["spans_key"]),
            "max_relation_length": validate_max_relation_length(cfg["max_relation_length"]),
            "label": _validate_non_empty_string("label", cfg["label"]),
        }

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    @property
    def max_relation_length(self) -> int:
        return self.cfg["max_relation_length"]

    @property
    def label(self) -> str:
        return self.cfg["label"]

    def __call__(self, doc: Doc) -> Doc:
        """Extract the triples of ``doc``; overwrites any span group under ``spans_key``."""
        triples = extract_triples(doc, self.max_relation_length)
        relations = [Span(doc, *triple.relation, label=self.label) for triple in triples]
        doc.spans[self.spans_key] = SpanGroup(doc, name=self.spans_key, spans=relations)
        doc._.set(TRIPLES_EXTENSION, [triple.to_dict() for triple in triples])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        """Process docs one by one: the rules are per Doc, so batching changes nothing."""
        for doc in stream:
            yield self(doc)

    # Serialization: only the settings, as JSON.

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        """The settings as JSON bytes."""
        return srsly.json_dumps(self.cfg).encode("utf8")

    def _load_cfg(self, where: str, read: Callable[[], Any]) -> "OpenIEExtractor":
        """Settings from ``read()``; anything unreadable is an error naming the component and ``where``."""
        try:
            cfg = read()
            if not isinstance(cfg, dict):
                raise ValueError(f"expected a JSON object of settings, found {type(cfg).__name__}")
            self.cfg = self._validated_cfg(cfg)
        except Exception as err:
            raise ValueError(
                f"Cannot load component '{self.name}': {where} is truncated, corrupted or not seqlab_oie settings "
                f"({type(err).__name__}: {err}); copy the pipeline again from where it was saved, "
                "or re-save it with nlp.to_disk"
            ) from err
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "OpenIEExtractor":
        """Load settings written by :meth:`to_bytes`."""
        return self._load_cfg(
            f"the bytes of component '{self.name}'", lambda: srsly.json_loads(bytes_data.decode("utf8"))
        )

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        """Write the settings to ``path/cfg.json``."""
        directory = ensure_path(path)
        directory.mkdir(parents=True, exist_ok=True)
        srsly.write_json(directory / CFG_FILENAME, self.cfg)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "OpenIEExtractor":
        """Load settings written by :meth:`to_disk`."""
        cfg_path = ensure_path(path) / CFG_FILENAME
        if not cfg_path.exists():
            raise ValueError(
                f"Cannot load component '{self.name}': {cfg_path} is missing; copy the pipeline again from where "
                "it was saved, or re-save it with nlp.to_disk"
            )
        return self._load_cfg(str(cfg_path), lambda: srsly.read_json(cfg_path))


@Language.factory(
    "seqlab_oie",
    requires=["token.dep", "token.head", "token.pos"],
    assigns=["doc.spans", "doc._.oie_triples"],
    default_config={"spans_key": "oie_rel", "max_relation_length": 5, "label": "REL"},
)
def make_oie(nlp: Language, name: str, spans_key: str, max_relation_length: int, label: str) -> OpenIEExtractor:
    """Rule-based OIE over the dependency parse; relation spans go to ``doc.spans[spans_key]``."""
    return OpenIEExtractor(name, spans_key=spans_key, max_relation_length=max_relation_length, label=label)
