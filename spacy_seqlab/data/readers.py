"""spaCy corpus readers for CoNLL-style files and the packaged WNUT-16 data.

The shipped configs read ``.spacy`` DocBins from ``paths`` with ``spacy.Corpus.v1``, as spaCy
users expect; these readers are the explicit alternative, put in a config to read text without
converting it first (a DocBin given to the CoNLL reader is an error naming ``spacy.Corpus.v1``)::

    [corpora.train]
    @readers = "spacy_seqlab.ConllCorpus.v1"
    path = "data/ner.conll"
    split = "train"

Like ``spacy.Corpus.v1``, each reader yields Examples whose reference Doc holds the gold
annotation and whose predicted Doc is ``nlp.make_doc(text)`` (or, with ``gold_preproc``,
the gold tokens without annotation). Train/dev/test are the shared seeded split of
:func:`spacy_seqlab.data.conll.split_indices`.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from ..core.settings import registered_with, setting
from ..core.targets import Target
from .conll import (
    DEFAULT_FRACTIONS,
    SPLITS,
    ConllSentence,
    check_conll_path,
    check_fractions,
    read_conll,
    resolve_scheme,
    select_split,
    sentences_to_docs,
)
from .resources import wnut16_path

READER_SPLITS = ("all",) + SPLITS


@dataclass
class ConllReaderSettings:
    """How a CoNLL-style file is read into Examples (``spacy_seqlab.ConllCorpus.v1``)."""

    split: str = setting("all", f"Which split to yield: {', '.join(READER_SPLITS)}.")
    fractions: List[float] = setting(
        help="Train/dev/test fractions of the shared split.", factory=lambda: list(DEFAULT_FRACTIONS)
    )
    seed: int = setting(0, "Seed of the shared split.")
    target: str = setting("ents", "Where the gold tags go: ents, spans:KEY, tag or pos.")
    scheme: str = setting("auto", "Tag scheme of the file: auto, iob1, iob2, bioes, or tags.")
    word_column: int = setting(0, "Column of the words (negative counts from the end).")
    tag_column: int = setting(-1, "Column of the tags (negative counts from the end).")
    gold_preproc: bool = setting(False, "Keep the gold tokenization in the predicted Doc.")
    limit: int = setting(0, "Yield at most this many Examples (0: all).")

    def __post_init__(self) -> None:
        # Checked when the config is loaded, not mid-training.
        if self.split not in READER_SPLITS:
            raise ValueError(f"Unknown split {self.split!r}: expected one of {', '.join(READER_SPLITS)}")
        if not isinstance(self.limit, int) or self.limit < 0:
            raise ValueError(f"limit must be 0 (no limit) or positive, got {self.limit}")
        self.fractions = list(check_fractions(self.fractions))
        Target.parse(self.target)
        resolve_scheme([], self.scheme)  # validates the scheme name


class ConllCorpus:
    """Iterate over the Examples of one split of a CoNLL file; call it with the ``nlp`` object.

    The file is parsed on the first call and kept; Docs are rebuilt with each caller's vocab.
    """

    def __init__(self, path: Path, settings: ConllReaderSettings) -> None:
        self.settings = settings
        self.is_span = Target.parse(settings.target).is_span
        self.path = check_conll_path(path)
        self._sentences: Optional[List[ConllSentence]] = None
        self._span_scheme: Optional[str] = None

    def _split_sentences(self) -> List[ConllSentence]:
        if self._sentences is None:
            s = self.settings
            sentences = list(
                read_conll(self.path, word_column=s.word_column, tag_column=s.tag_column, chunk_tags=self.is_span)
            )
            # "auto" is decided over the whole file, so every split reads tags the same way.
            if self.is_span:
                self._span_scheme = resolve_scheme(sentences, s.scheme)
            self._sentences = select_split(sentences, s.split, s.fractions, s.seed)
        return self._sentences

    def __call__(self, nlp: Language) -> Iterator[Example]:
        sentences = self._split_sentences()
        if self.settings.limit:
            sentences = sentences[: self.settings.limit]
        scheme = self._span_scheme or self.settings.scheme
        for reference in sentences_to_docs(sentences, nlp.vocab, target=self.settings.target, scheme=scheme):
            yield Example(self._predicted_doc(nlp, reference), reference)

    def __len__(self) -> int:
        """The number of Examples one call yields."""
        n = len(self._split_sentences())
        return min(n, self.settings.limit) if self.settings.limit else n

    def _predicted_doc(self, nlp: Language, reference: Doc) -> Doc:
        if self.settings.gold_preproc:
            return Doc(nlp.vocab, words=[t.text for t in reference], spaces=[bool(t.whitespace_) for t in reference])
        return nlp.make_doc(reference.text)


@registry.readers("spacy_seqlab.ConllCorpus.v1")
@registered_with(ConllReaderSettings)
def create_conll_corpus(path: Path, settings: ConllReaderSettings) -> Callable[[Language], Iterator[Example]]:
    """Examples from one ``split`` ("all", "train", "dev", "test") of a CoNLL-style file.

    ``fractions``/``seed`` define the split (the project's shared recipe); ``target``,
    ``scheme``, ``word_column``/``tag_column`` are as in :func:`spacy_seqlab.data.conll.convert`.
    """
    return ConllCorpus(path, settings)


@registry.readers("spacy_seqlab.WNUT16Corpus.v1")
def create_wnut16_corpus(
    split: str = "train", seed: int = 0, gold_preproc: bool = False, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Examples from the packaged WNUT-16 NER data (``doc.ents``), under the shared split.

    With ``seed=0`` the splits have 1,675 / 359 / 360 tweets.
    """
    settings = ConllReaderSettings(split=split, seed=seed, scheme="iob2", gold_preproc=gold_preproc, limit=limit)
    return ConllCorpus(wnut16_path(), settings)
