"""Alignment between a Hugging Face fast tokenizer's sub-words ("pieces") and spaCy tokens.

Each Doc's text is tokenized as a whole (no special tokens; windows add them later), so
the model sees the text as it is written. Pieces are mapped to tokens through their
character offsets:

* a piece's span is stripped of surrounding whitespace (byte-level BPE ``Ġword`` and
  SentencePiece ``▁word`` include the preceding space) unless it is whitespace only, in
  which case it may belong to a spaCy whitespace token;
* a piece belongs to every token its span overlaps, so a piece that spans two tokens
  (``can't`` → ``ca`` + ``n't``) serves both;
* a token with no piece (whitespace or characters the tokenizer drops) is an *orphan*:
  pooling gives it a zero vector, so it still gets exactly one prediction.

A batch is tokenized in one call and aligned at once, its Docs' texts laid end to end: numpy
over whole arrays, with no Python loop per piece or per token (one per Doc to read its arrays).
"""

from dataclasses import dataclass
from itertools import chain
from typing import List, Sequence, Tuple

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc

# Unicode White_Space code points (what str.isspace() accepts) are all below U+3001: a lookup table.
_IS_SPACE = numpy.array([chr(c).isspace() for c in range(0x3001)], dtype=bool)


@dataclass
class PieceLinks:
    """Pieces and how they map to tokens.

    ``pair_token[i]`` and ``pair_piece[i]`` form one (token, piece) link, sorted by token
    then piece. ``first``/``last`` give each token's first/last piece, -1 for orphans.
    """

    piece_ids: numpy.ndarray  # (n_pieces,) vocabulary ids
    first: numpy.ndarray  # (n_tokens,)
    last: numpy.ndarray  # (n_tokens,)
    pair_token: numpy.ndarray  # (n_links,)
    pair_piece: numpy.ndarray  # (n_links,)

    @property
    def n_pieces(self) -> int:
        return len(self.piece_ids)

    @property
    def n_tokens(self) -> int:
        return len(self.first)

    @property
    def orphans(self) -> numpy.ndarray:
        """Indices of tokens that no piece covers."""
        return numpy.flatnonzero(self.first < 0)


@dataclass
class DocAlignment(PieceLinks):
    """The pieces of one Doc and how they map to its tokens."""


@dataclass
class BatchAlignment(PieceLinks):
    """The alignments of a batch of Docs, concatenated: piece and token indices are batch-wide."""

    doc_pieces: numpy.ndarray  # (n_docs,) pieces per Doc
    doc_tokens: numpy.ndarray  # (n_docs,) tokens per Doc

    def docs(self) -> List[DocAlignment]:
        """One :class:`DocAlignment` per Doc, indices local to it."""
        piece_base = numpy.cumsum(self.doc_pieces) - self.doc_pieces
        token_base = numpy.cumsum(self.doc_tokens) - self.doc_tokens
        link_ends = numpy.searchsorted(self.pair_token, token_base + self.doc_tokens, side="left")
        link_starts = numpy.concatenate([[0], link_ends[:-1]]).astype(numpy.int64)
        result = []
        for p, n_p, t, n_t, ls, le in zip(
            piece_base, self.doc_pieces, token_base, self.doc_tokens, link_starts, link_ends
        ):
            first, last = self.first[t : t + n_t], self.last[t : t + n_t]
            result.append(
                DocAlignment(
                    self.piece_ids[p : p + n_p],
                    numpy.where(first >= 0, first - p, -1),
                    numpy.where(last >= 0, last - p, -1),
                    self.pair_token[ls:le] - t,
                    self.pair_piece[ls:le] - p,
                )
            )
        return result


def _space_mask(text: str) -> numpy.ndarray:
    codes = numpy.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=numpy.uint32)
    return _IS_SPACE[numpy.minimum(codes, len(_IS_SPACE) - 1)] & (codes < len(_IS_SPACE))


def _strip_spans(
    starts: numpy.ndarray, ends: numpy.ndarray, is_space: numpy.ndarray
) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Shrink each [start, end) to exclude surrounding whitespace; all-whitespace spans are kept."""
    solid = numpy.flatnonzero(~is_space)
    if len(solid) == 0:
        return starts, ends
    n_chars = len(is_space)
    pos = numpy.searchsorted(solid, starts, side="left")
    new_starts = numpy.where(pos < len(solid), solid[numpy.minimum(pos, len(solid) - 1)], n_chars)
    pos = numpy.searchsorted(solid, ends, side="left") - 1
    new_ends = numpy.where(pos >= 0, solid[numpy.maximum(pos, 0)] + 1, 0)
    keep = new_starts < new_ends
    return numpy.where(keep, new_starts, starts), numpy.where(keep, new_ends, ends)


def _align(
    text: str,
    token_spans: numpy.ndarray,
    doc_tokens: numpy.ndarray,
    piece_ids: numpy.ndarray,
    piece_spans: numpy.ndarray,
    doc_pieces: numpy.ndarray,
) -> BatchAlignment:
    """Align pieces to tokens by their (start, end) character spans in ``text`` (the Docs' texts
    laid end to end: a piece never overlaps a token of another Doc, so one pass serves the batch)."""
    n_tokens = len(token_spans)
    first = numpy.full(n_tokens, -1, dtype=numpy.int64)
    last = numpy.full(n_tokens, -1, dtype=numpy.int64)
    pair_token = pair_piece = numpy.zeros(0, dtype=numpy.int64)
    if n_tokens and len(piece_ids):
        tok_starts, tok_ends = token_spans[:, 0], token_spans[:, 1]
        starts, ends = _strip_spans(piece_spans[:, 0], piece_spans[:, 1], _space_mask(text))
        # Token ranges are sorted and disjoint, so the tokens a span overlaps are contiguous.
        first_tok = numpy.searchsorted(tok_ends, starts, side="right")
        last_tok = numpy.searchsorted(tok_starts, ends, side="left") - 1
        counts = numpy.where(ends > starts, numpy.maximum(last_tok - first_tok + 1, 0), 0)
        pair_piece = numpy.repeat(numpy.arange(len(piece_ids)), counts)
        within = numpy.arange(counts.sum()) - numpy.repeat(numpy.cumsum(counts) - counts, counts)
        pair_token = numpy.repeat(first_tok, counts) + within
        order = numpy.lexsort((pair_piece, pair_token))
        pair_token, pair_piece = pair_token[order], pair_piece[order]
        if len(pair_token):
            # Pairs are sorted by (token, piece): a token's first link holds its first piece.
            is_first = numpy.concatenate([[True], pair_token[1:] != pair_token[:-1]])
            is_last = numpy.concatenate([pair_token[1:] != pair_token[:-1], [True]])
            first[pair_token[is_first]] = pair_piece[is_first]
            last[pair_token[is_last]] = pair_piece[is_last]
    return BatchAlignment(piece_ids, first, last, pair_token, pair_piece, doc_pieces=doc_pieces, doc_tokens=doc_tokens)


def _token_spans(docs: Sequence[Doc], char_base: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
    doc_tokens = numpy.array([len(doc) for doc in docs], dtype=numpy.int64)
    if not doc_tokens.sum():
        return numpy.zeros((0, 2), dtype=numpy.int64), doc_tokens
    arrays = numpy.concatenate([doc.to_array([IDX, LENGTH]) for doc in docs if len(doc)]).astype(numpy.int64)
    starts = arrays[:, 0] + numpy.repeat(char_base, doc_tokens)
    return numpy.stack([starts, starts + arrays[:, 1]], axis=1), doc_tokens


def align_offsets(doc: Doc, piece_ids: Sequence[int], offsets: numpy.ndarray) -> DocAlignment:
    """Align one Doc with its pieces given their (start, end) character offsets in ``doc.text``."""
    piece_ids = numpy.asarray(piece_ids, dtype=numpy.int64)
    offsets = numpy.asarray(offsets, dtype=numpy.int64).reshape(-1, 2)
    token_spans, doc_tokens = _token_spans([doc], numpy.zeros(1, dtype=numpy.int64))
    doc_pieces = numpy.array([len(piece_ids)], dtype=numpy.int64)
    return _align(doc.text, token_spans, doc_tokens, piece_ids, offsets, doc_pieces).docs()[0]


def align_batch(docs: Sequence[Doc], tokenizer) -> BatchAlignment:
    """Tokenize the Docs' texts with a fast tokenizer (one batched call) and align them together."""
    if docs and not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer: sub-word alignment needs character "
            "offsets (return_offsets_mapping), which only fast (Rust) tokenizers provide"
        )
    texts = [doc.text for doc in docs]
    lengths = numpy.array([len(text) for text in texts], dtype=numpy.int64)
    char_base = numpy.cumsum(lengths) - lengths
    token_spans, doc_tokens = _token_spans(docs, char_base)
    if not docs:
        empty = numpy.zeros(0, dtype=numpy.int64)
        return _align("", token_spans, doc_tokens, empty, numpy.zeros((0, 2), dtype=numpy.int64), empty)
    encoded = tokenizer(
        texts,
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    doc_pieces = numpy.array([len(ids) for ids in encoded["input_ids"]], dtype=numpy.int64)
    total = int(doc_pieces.sum())
    piece_ids = numpy.fromiter(chain.from_iterable(encoded["input_ids"]), dtype=numpy.int64, count=total)
    flat = numpy.fromiter(
        chain.from_iterable(chain.from_iterable(encoded["offset_mapping"])), dtype=numpy.int64, count=2 * total
    )
    piece_spans = flat.reshape(-1, 2) + numpy.repeat(char_base, doc_pieces)[:, None]
    return _align("".join(texts), token_spans, doc_tokens, piece_ids, piece_spans, doc_pieces)


def align_docs(docs: Sequence[Doc], tokenizer) -> List[DocAlignment]:
    """Tokenize each Doc's text with a fast tokenizer (one batched call) and align it."""
    return align_batch(docs, tokenizer).docs()
