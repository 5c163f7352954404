"""CoNLL-style column files: read sentences, build gold Docs, split them, write DocBins.

One token per line, a tag in one column; sentences are separated by blank lines (or lines
holding only whitespace, as WNUT-16's single-TAB lines). ``-DOCSTART-`` lines (CoNLL-2003)
start a new document and are not sentences. Columns are split on tabs when a line has a
tab, else on runs of spaces; every token line of a file has the same number of columns.

Every format problem raises :class:`ConllFormatError` with a ``path:line:`` prefix, so a
bad line in a 200k-line file can be found without a stack trace.
"""

import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Tuple, TypeVar, Union

from spacy.parts_of_speech import IDS as UPOS_IDS
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.vocab import Vocab

from ..core.schemes import detect_scheme, split_tag, tags_to_spans
from ..core.targets import Target

PathLike = Union[str, Path]
T = TypeVar("T")

DOCSTART = "-DOCSTART-"
# The project's shared train/dev/test split (see split_indices).
DEFAULT_FRACTIONS: Tuple[float, float, float] = (0.7, 0.15, 0.15)
SPLITS = ("train", "dev", "test")
# "iob1" is read as lenient IOB2, which recovers IOB1 chunks exactly.
INPUT_SCHEMES = ("auto", "iob1", "iob2", "bioes")
# spaCy's Universal POS names; "" (no tag) and "EOL" are internal values, not tags.
UPOS_TAGS = frozenset(name for name in UPOS_IDS if name not in ("", "EOL"))


class ConllFormatError(ValueError):
    """A CoNLL file that cannot be read; the message starts with ``path:line:``."""

    def __init__(self, path: PathLike, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path = str(path)
        self.line = line
        self.problem = problem


@dataclass(frozen=True)
class ConllSentence:
    """One sentence: its words and tags, where it starts in the file, and its document."""

    words: Tuple[str, ...]
    tags: Tuple[str, ...]
    line: int  # 1-based line number of the first token; token i is on line ``line + i``
    document: int  # 0-based; incremented by each -DOCSTART- that follows some sentences
    source: str = "<unknown>"  # the file it was read from, for error messages


def _split_columns(line: str) -> List[str]:
    if "\t" in line:
        return [column.strip() for column in line.split("\t")]
    return line.split()


def _column_index(index: int, n_columns: int) -> int:
    return index if index >= 0 else n_columns + index


def read_conll(
    path: PathLike, *, word_column: int = 0, tag_column: int = -1, chunk_tags: bool = True
) -> Iterator[ConllSentence]:
    """Read a CoNLL-style file lazily, one :class:`ConllSentence` at a time.

    ``word_column``/``tag_column`` index the columns (negative counts from the end).
    With ``chunk_tags`` (for span targets) every tag must be ``O`` or ``PREFIX-LABEL`` with
    PREFIX in B/I/E/S/L/U; without it any non-empty tag is kept (POS tags, say).
    Handles CRLF, a UTF-8 BOM, trailing separators and a missing final newline.
    A missing file raises :class:`ConllFormatError` at once; format errors when reached.
    """
    return _iter_sentences(check_conll_path(path), word_column, tag_column, chunk_tags)


def check_conll_path(path: PathLike) -> Path:
    """``path`` as a Path if it is an existing text file, else a :class:`ConllFormatError` (line 0);
    a spaCy DocBin (``.spacy``) is named as such, with the reader that reads it."""
    path = Path(path)
    if not path.exists():
        raise ConllFormatError(path, 0, "file not found")
    if not path.is_file():
        raise ConllFormatError(path, 0, "not a file")
    if is_docbin(path):
        raise ConllFormatError(
            path,
            0,
            'a spaCy DocBin (.spacy), not a CoNLL text file: read it with @readers = "spacy.Corpus.v1" '
            "(what the shipped configs use for paths.train/paths.dev); spacy_seqlab.ConllCorpus.v1 reads CoNLL text",
        )
    return path


def is_docbin(path: Path) -> bool:
    """Whether ``path`` holds a spaCy DocBin: named ``.spacy``, or zlib-compressed bytes (what
    ``DocBin.to_disk`` writes) that are not UTF-8 text."""
    if path.suffix == ".spacy":
        return True
    with path.open("rb") as file:
        head = file.read(2)
    # A zlib stream starts with 0x78 and a header whose 16-bit value is a multiple of 31.
    return len(head) == 2 and head[0] == 0x78 and int.from_bytes(head, "big") % 31 == 0 and head[1] >= 0x80


def _iter_sentences(path: Path, word_column: int, tag_column: int, chunk_tags: bool) -> Iterator[ConllSentence]:
    words: List[str] = []
    tags: List[str] = []
    first_line = 0
    # Every token line has the column count of the file's first one: a line missing a column would
    # otherwise shift which column ``tag_column`` reads (a chunk tag taken as an entity label).
    n_columns = first_token_line = 0
    document = 0
    document_has_sentences = False

    def finish() -> ConllSentence:
        sentence = ConllSentence(tuple(words), tuple(tags), first_line, document, str(path))
        words.clear()
        tags.clear()
        return sentence

    # Binary mode so that a decoding error can name its line.
    with path.open("rb") as file:
        for line_number, raw in enumerate(file, start=1):
            try:
                line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise ConllFormatError(path, line_number, f"not valid UTF-8 ({error.reason})") from None
            # Trailing whitespace (CR of CRLF, a stray tab after the tag) is never a column.
            line = line.rstrip()
            if not line:
                if words:
                    document_has_sentences = True
                    yield finish()
                continue
            columns = _split_columns(line)
            if columns[0] == DOCSTART:
                if words:
                    document_has_sentences = True
                    yield finish()
                if document_has_sentences:
                    document += 1
                    document_has_sentences = False
                continue
            word_index = _column_index(word_column, len(columns))
            tag_index = _column_index(tag_column, len(columns))
            if not (0 <= word_index < len(columns) and 0 <= tag_index < len(columns)) or word_index == tag_index:
                raise ConllFormatError(
                    path,
                    line_number,
                    f"too few columns: found {len(columns)}, need a word column ({word_column}) "
                    f"and a separate tag column ({tag_column})",
                )
            if not n_columns:
                n_columns, first_token_line = len(columns), line_number
            elif len(columns) != n_columns:
                raise ConllFormatError(
                    path,
                    line_number,
                    f"{len(columns)} columns, but the file's token lines have {n_columns} "
                    f"(as line {first_token_line}): a column is missing or extra",
                )
            word, tag = columns[word_index], columns[tag_index]
            if not word:
                raise ConllFormatError(path, line_number, f"empty token in column {word_column}")
            if not tag:
                raise ConllFormatError(path, line_number, f"empty tag in column {tag_column}")
            if chunk_tags:
                try:
                    split_tag(tag)
                except ValueError as error:
                    raise ConllFormatError(path, line_number, str(error)) from None
            if not words:
                first_line = line_number
            words.append(word)
            tags.append(tag)
    if words:
        yield finish()


def resolve_scheme(sentences: Sequence[ConllSentence], scheme: str = "auto") -> str:
    """The span scheme to read ``sentences`` with: ``"iob2"`` or ``"bioes"``.

    ``"auto"`` looks at every tag of every sentence; ``"iob1"`` reads as (lenient) IOB2.
    """
    if scheme not in INPUT_SCHEMES:
        raise ValueError(f"Unknown input scheme {scheme!r}: expected one of {', '.join(INPUT_SCHEMES)}")
    if scheme == "auto":
        return detect_scheme(tag for sentence in sentences for tag in sentence.tags)
    return "iob2" if scheme == "iob1" else scheme


def sentences_to_docs(
    sentences: Iterable[ConllSentence], vocab: Vocab, *, target: str = "ents", scheme: str = "auto"
) -> List[Doc]:
    """Build one gold Doc per sentence from its words (a space after every word but the last).

    ``target``: ``"ents"`` sets ``doc.ents`` (other tokens are ``O``, not missing),
    ``"spans:KEY"`` sets ``doc.spans[KEY]``, ``"tag"``/``"pos"`` set ``token.tag_``/``token.pos_``
    to the raw tag (``pos`` needs Universal POS tags). Span tags are read conlleval style
    (``repair="lenient"``) in ``scheme``: ``"auto"`` (detected over all sentences), ``"iob1"``,
    ``"iob2"`` or ``"bioes"``.
    """
    parsed_target = Target.parse(target)
    sentences = list(sentences)
    span_scheme = resolve_scheme(sentences, scheme) if parsed_target.is_span else None
    docs = []
    for sentence in sentences:
        doc = Doc(vocab, words=list(sentence.words), spaces=[True] * (len(sentence.words) - 1) + [False])
        if span_scheme is not None:
            try:
                chunks = tags_to_spans(sentence.tags, span_scheme, repair="lenient")
            except ValueError as error:
                raise ConllFormatError(sentence.source, sentence.line, str(error)) from None
            spans = [Span(doc, start, end, label=label) for start, end, label in chunks]
            if parsed_target.kind == "ents":
                doc.set_ents(spans, default="outside")
            else:
                doc.spans[parsed_target.key] = SpanGroup(doc, name=parsed_target.key, spans=spans)
        else:
            for offset, (token, tag) in enumerate(zip(doc, sentence.tags)):
                if parsed_target.kind == "pos":
                    if tag not in UPOS_TAGS:
                        raise ConllFormatError(
                            sentence.source,
                            sentence.line + offset,
                            f"{tag!r} is not a Universal POS tag "
                            f"(target 'pos' needs one of {', '.join(sorted(UPOS_TAGS))})",
                        )
                    token.pos_ = tag
                else:
                    token.tag_ = tag
        docs.append(doc)
    return docs


def split_indices(
    n: int, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> Tuple[List[int], List[int], List[int]]:
    """The project's shared train/dev/test split of ``n`` items (indices, in shuffled order).

    Exactly: shuffle ``range(n)`` with ``random.Random(seed)``; the first ``int(f_train * n)``
    are train, the next ``int(f_dev * n)`` dev, the rest test. Every benchmark uses this
    recipe, so results compare; do not change it.
    """
    check_fractions(fractions)
    if n < 0:
        raise ValueError(f"Cannot split a negative number of items ({n})")
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    n_train = int(fractions[0] * n)
    n_dev = int(fractions[1] * n)
    return idx[:n_train], idx[n_train : n_train + n_dev], idx[n_train + n_dev :]


def check_fractions(fractions: Sequence[float]) -> Tuple[float, float, float]:
    """Return ``fractions`` as a 3-tuple if they are 3 non-negative numbers summing to 1 (± 1e-6)."""
    values = tuple(fractions)
    if len(values) != 3:
        raise ValueError(f"Split fractions must be 3 numbers (train, dev, test), got {len(values)}: {list(values)}")
    if any(not isinstance(value, (int, float)) or not value >= 0 for value in values):
        raise ValueError(f"Split fractions must be non-negative numbers, got {list(values)}")
    if abs(sum(values) - 1.0) > 1e-6:
        raise ValueError(f"Split fractions must sum to 1, got {list(values)} (sum {sum(values):g})")
    return values  # type: ignore[return-value]


def select_split(
    items: Sequence[T], split: str, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0
) -> List[T]:
    """The ``split`` ("all", "train", "dev" or "test") of ``items`` under :func:`split_indices`."""
    if split == "all":
        return list(items)
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}: expected one of all, {', '.join(SPLITS)}")
    indices = split_indices(len(items), fractions, seed)[SPLITS.index(split)]
    return [items[i] for i in indices]


def corpus_stats(docs: Iterable[Doc], target: str = "ents") -> Dict:
    """Counts for a corpus: ``docs``, ``words``, ``spans`` and ``spans_per_label``.

    ``spans_per_label`` is sorted by count (descending), then label. For the per-token
    targets ``tag``/``pos`` every tagged token counts as a one-token span.
    """
    parsed_target = Target.parse(target)
    n_docs = n_words = 0
    per_label: Counter = Counter()
    for doc in docs:
        n_docs += 1
        n_words += len(doc)
        if parsed_target.is_span:
            per_label.update(label for _, _, label in parsed_target.doc_spans(doc))
        else:
            per_label.update(tag for tag in parsed_target.doc_tags(doc, "tags") if tag)
    ranked = sorted(per_label.items(), key=lambda item: (-item[1], item[0]))
    return {"docs": n_docs, "words": n_words, "spans": sum(per_label.values()), "spans_per_label": dict(ranked)}


def convert(
    input_path: PathLike,
    output_dir: PathLike,
    *,
    target: str = "ents",
    scheme: str = "auto",
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    word_column: int = 0,
    tag_column: int = -1,
) -> Dict[str, Path]:
    """Convert a CoNLL file into ``train.spacy``, ``dev.spacy`` and ``test.spacy`` DocBins.

    The split is :func:`split_indices` over the file's sentences. Returns split → path.
    """
    check_fractions(fractions)
    is_span = Target.parse(target).is_span
    sentences = list(read_conll(input_path, word_column=word_column, tag_column=tag_column, chunk_tags=is_span))
    docs = sentences_to_docs(sentences, Vocab(), target=target, scheme=scheme)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in SPLITS:
        # The docs carry no user data, so the DocBin need not store any.
        doc_bin = DocBin(docs=select_split(docs, split, fractions, seed), store_user_data=False)
        paths[split] = output_dir / f"{split}.spacy"
        doc_bin.to_disk(paths[split])
    return paths


def read_docbin(path: PathLike, vocab: Vocab) -> List[Doc]:
    """The Docs of a ``.spacy`` DocBin file."""
    return list(DocBin().from_disk(path).get_docs(vocab))
