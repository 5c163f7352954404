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

Everything here is numpy over whole arrays: no Python loop per piece or per token.
"""

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy
from spacy.attrs import IDX, LENGTH
from spacy.tokens import Doc

# Unicode White_Space code points (what str.isspace() accepts), for vectorised stripping.
_WHITESPACE = numpy.array([c for c in range(0x3001) if chr(c).isspace()], dtype=numpy.uint32)


@dataclass
class DocAlignment:
    """Pieces of one Doc and how they map to its tokens.

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


def _space_mask(text: str) -> numpy.ndarray:
    codes = numpy.frombuffer(text.encode("utf-32-le", errors="surrogatepass"), dtype=numpy.uint32)
    return numpy.isin(codes, _WHITESPACE)


def _strip_spans(starts: numpy.ndarray, ends: numpy.ndarray, is_space: numpy.ndarray) -> Tuple[numpy.ndarray, numpy.ndarray]:
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


def align_offsets(doc: Doc, piece_ids: Sequence[int], offsets: numpy.ndarray) -> DocAlignment:
    """Align one Doc with its pieces given their (start, end) character offsets in ``doc.text``."""
    piece_ids = numpy.asarray(piece_ids, dtype=numpy.int64)
    offsets = numpy.asarray(offsets, dtype=numpy.int64).reshape(-1, 2)
    n_tokens = len(doc)
    if n_tokens == 0 or len(piece_ids) == 0:
        none = numpy.full(n_tokens, -1, dtype=numpy.int64)
        empty = numpy.zeros(0, dtype=numpy.int64)
        return DocAlignment(piece_ids, none, none.copy(), empty, empty)
    tok = doc.to_array([IDX, LENGTH]).astype(numpy.int64)
    tok_starts, tok_ends = tok[:, 0], tok[:, 0] + tok[:, 1]
    starts, ends = _strip_spans(offsets[:, 0], offsets[:, 1], _space_mask(doc.text))
    # Token ranges are sorted and disjoint, so the tokens a span overlaps are contiguous.
    first_tok = numpy.searchsorted(tok_ends, starts, side="right")
    last_tok = numpy.searchsorted(tok_starts, ends, side="left") - 1
    counts = numpy.where(ends > starts, numpy.maximum(last_tok - first_tok + 1, 0), 0)
    pair_piece = numpy.repeat(numpy.arange(len(piece_ids)), counts)
    within = numpy.arange(counts.sum()) - numpy.repeat(numpy.cumsum(counts) - counts, counts)
    pair_token = numpy.repeat(first_tok, counts) + within
    order = numpy.lexsort((pair_piece, pair_token))
    pair_token, pair_piece = pair_token[order], pair_piece[order]
    first = numpy.full(n_tokens, -1, dtype=numpy.int64)
    last = numpy.full(n_tokens, -1, dtype=numpy.int64)
    if len(pair_token):
        # Pairs are sorted by (token, piece): a token's first link holds its first piece.
        is_first = numpy.concatenate([[True], pair_token[1:] != pair_token[:-1]])
        is_last = numpy.concatenate([pair_token[1:] != pair_token[:-1], [True]])
        first[pair_token[is_first]] = pair_piece[is_first]
        last[pair_token[is_last]] = pair_piece[is_last]
    return DocAlignment(piece_ids, first, last, pair_token, pair_piece)


def align_docs(docs: Sequence[Doc], tokenizer) -> List[DocAlignment]:
    """Tokenize each Doc's text with a fast tokenizer (one batched call) and align it."""
    if not docs:
        return []
    if not getattr(tokenizer, "is_fast", False):
        raise ValueError(
            f"{type(tokenizer).__name__} is not a fast tokenizer: sub-word alignment needs character "
            "offsets (return_offsets_mapping), which only fast (Rust) tokenizers provide"
        )
    encoded = tokenizer(
        [doc.text for doc in docs],
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        return_token_type_ids=False,
        verbose=False,
    )
    return [
        align_offsets(doc, ids, numpy.asarray(offsets, dtype=numpy.int64))
        for doc, ids, offsets in zip(docs, encoded["input_ids"], encoded["offset_mapping"])
    ]
