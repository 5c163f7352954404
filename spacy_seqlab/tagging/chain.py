"""Linear-chain algorithms over a padded batch of documents, in numpy: the forward and backward
recursions (log-space), the log-partition and the marginals, Viterbi, and the probability of a span.

A document of ``n`` tokens over ``K`` tags has emission scores ``E[t, k]`` (here the log of the
tagger's softmax probabilities) and a :class:`ChainScores`: transition scores ``pairs[prev, next]``,
``start[k]`` and ``end[k]``, and the scheme's masks of allowed transitions, first and last tags
(:meth:`~spacy_seqlab.core.schemes.TagSet.transition_mask`). A sequence's score is the sum of its
emission, transition, start and end scores; a sequence with a disallowed transition, first or last
tag has probability zero and is never decoded.

Everything runs on a batch padded to ``N`` positions with per-document ``lengths``: one step per
position, vectorised over documents and tags (no loop over documents or tag pairs). Padded positions
carry the last real position's values through, so a document's results do not depend on what it is
batched with. numpy rather than torch: these loops run one small step per token, and numpy's
per-call overhead is several times lower (a 50,000-token document decodes in about a second).
"""

from dataclasses import dataclass
from typing import List, Tuple

import numpy

# A finite stand-in for log(0): sums never meet inf - inf, and any sequence through a masked entry
# scores below -1e8, far under every allowed one.
IMPOSSIBLE = -1e9


@dataclass
class ChainScores:
    """Transition scores with the scheme's masks: ``pairs[prev, next]``, ``start``, ``end`` (float)
    and ``allowed[prev, next]``, ``first``, ``last`` (bool)."""

    pairs: numpy.ndarray
    start: numpy.ndarray
    end: numpy.ndarray
    allowed: numpy.ndarray
    first: numpy.ndarray
    last: numpy.ndarray

    def tempered(self, temperature: float) -> "ChainScores":
        """The chain with its scores divided by ``temperature`` (the masks unchanged)."""
        if temperature == 1.0:
            return self
        scale = 1.0 / temperature
        return ChainScores(
            self.pairs * scale, self.start * scale, self.end * scale, self.allowed, self.first, self.last
        )

    def filled(self, value: float = IMPOSSIBLE) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """(pairs, start, end) with every disallowed entry set to ``value``."""
        return (
            numpy.where(self.allowed, self.pairs, value),
            numpy.where(self.first, self.start, value),
            numpy.where(self.last, self.end, value),
        )


def pad(rows: List[numpy.ndarray]) -> Tuple[numpy.ndarray, numpy.ndarray]:
    """Per-document ``(n_i, K)`` rows → a ``(B, N, K)`` batch padded with zeros, and the lengths."""
    lengths = numpy.array([len(r) for r in rows], dtype=numpy.int64)
    batch = numpy.zeros((len(rows), int(lengths.max()), rows[0].shape[1]), dtype=rows[0].dtype)
    for i, r in enumerate(rows):
        batch[i, : len(r)] = r
    return batch, lengths


def logsumexp(x: numpy.ndarray, axis: int) -> numpy.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + numpy.log(numpy.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def _live(lengths: numpy.ndarray) -> numpy.ndarray:
    """``(B, N, 1)``: whether each position is a real token."""
    n = int(lengths.max())
    return (numpy.arange(n)[None, :] < lengths[:, None])[:, :, None]


def forward_scores(emissions: numpy.ndarray, lengths: numpy.ndarray, chain: ChainScores) -> numpy.ndarray:
    """α ``(B, N, K)``: log of the summed scores of all prefixes ending in tag k at position t
    (emission at t included); padded positions repeat the last real one."""
    pairs, start, _ = chain.filled()
    live = _live(lengths)
    alpha = numpy.empty_like(emissions)
    alpha[:, 0] = start + emissions[:, 0]
    for t in range(1, emissions.shape[1]):
        step = logsumexp(alpha[:, t - 1, :, None] + pairs, axis=1) + emissions[:, t]
        alpha[:, t] = numpy.where(live[:, t], step, alpha[:, t - 1])
    return alpha


def backward_scores(emissions: numpy.ndarray, lengths: numpy.ndarray, chain: ChainScores) -> numpy.ndarray:
    """β ``(B, N, K)``: log of the summed scores of all suffixes after tag k at position t (end
    score included, emission at t excluded); ``end`` at the last real position and beyond."""
    pairs, _, end = chain.filled()
    live = _live(lengths)
    beta = numpy.empty_like(emissions)
    beta[:, -1] = end
    for t in range(emissions.shape[1] - 2, -1, -1):
        step = logsumexp(pairs + (emissions[:, t + 1] + beta[:, t + 1])[:, None, :], axis=2)
        beta[:, t] = numpy.where(live[:, t + 1], step, end)
    return beta


def log_partition(emissions: numpy.ndarray, lengths: numpy.ndarray, chain: ChainScores) -> numpy.ndarray:
    """``(B,)``: log of the summed scores of all allowed sequences of each document."""
    _, _, end = chain.filled()
    return logsumexp(forward_scores(emissions, lengths, chain)[:, -1] + end, axis=1)


def marginals(
    emissions: numpy.ndarray, lengths: numpy.ndarray, chain: ChainScores
) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """(log Z ``(B,)``, tag marginals ``(B, N, K)`` (0 on padding), expected transition counts
    ``(K, K)`` and expected first and last tags ``(2, K)``, summed over the batch): the gradients of
    the summed log Z with respect to the emissions, ``pairs``, ``start`` and ``end``."""
    pairs, _, end = chain.filled()
    alpha = forward_scores(emissions, lengths, chain)
    beta = backward_scores(emissions, lengths, chain)
    log_z = logsumexp(alpha[:, -1] + end, axis=1)
    live = _live(lengths)
    tags = numpy.where(live, numpy.exp(alpha + beta - log_z[:, None, None]), 0.0)
    # P(tag i at t-1, tag j at t) for every real t >= 1.
    pair_scores = alpha[:, :-1, :, None] + pairs + (emissions[:, 1:] + beta[:, 1:])[:, :, None, :]
    pair_probs = numpy.exp(pair_scores - log_z[:, None, None, None]) * live[:, 1:, :, None]
    last = tags[numpy.arange(len(lengths)), lengths - 1].sum(axis=0)
    return log_z, tags, pair_probs.sum(axis=(0, 1)), numpy.stack([tags[:, 0].sum(axis=0), last])


def viterbi(emissions: numpy.ndarray, lengths: numpy.ndarray, chain: ChainScores) -> numpy.ndarray:
    """``(B, N)`` int64: the best-scoring allowed sequence of each document (0 on padding).

    Disallowed entries are -inf here, so no decoded sequence ever contains one: the all-``O``
    sequence (or any sequence, for plain tags) is always allowed.
    """
    pairs, start, end = chain.filled(-numpy.inf)
    batch, n, k = emissions.shape
    live = _live(lengths)
    score = start + emissions[:, 0]
    pointers = numpy.empty((batch, n, k), dtype=numpy.int64)
    identity = numpy.arange(k)
    pointers[:, 0] = identity
    for t in range(1, n):
        candidates = score[:, :, None] + pairs
        best_prev = candidates.argmax(axis=1)
        score = numpy.where(live[:, t], candidates.max(axis=1) + emissions[:, t], score)
        pointers[:, t] = numpy.where(live[:, t], best_prev, identity)
    tags = numpy.empty((batch, n), dtype=numpy.int64)
    tags[:, -1] = (score + end).argmax(axis=1)
    rows = numpy.arange(batch)
    for t in range(n - 1, 0, -1):
        tags[:, t - 1] = pointers[rows, t, tags[:, t]]
    return numpy.where(live[:, :, 0], tags, 0)


def span_log_marginals(
    emissions: numpy.ndarray,
    lengths: numpy.ndarray,
    chain: ChainScores,
    tags: numpy.ndarray,
    continues: numpy.ndarray,
    spans: numpy.ndarray,
) -> numpy.ndarray:
    """Log-probability of each span: that its tokens carry exactly their tags in ``tags`` and the
    token after it (if any) does not continue it.

    ``tags`` ``(B, N)`` must be well-formed; ``continues[prev, next]`` says which tag extends a
    chunk ending in ``prev`` (``I-X`` after ``B-X``/``I-X``); ``spans`` ``(S, 3)`` holds
    (document, start, end) rows, ``end`` exclusive. Returns ``(S,)``.
    """
    if len(spans) == 0:
        return numpy.zeros(0, dtype=emissions.dtype)
    pairs, _, end = chain.filled()
    alpha = forward_scores(emissions, lengths, chain)
    beta = backward_scores(emissions, lengths, chain)
    log_z = logsumexp(alpha[:, -1] + end, axis=1)
    # The score of the tag path itself, as a running sum: path[t] covers positions 1..t.
    emitted = numpy.take_along_axis(emissions, tags[:, :, None], axis=2)[:, :, 0]
    steps = pairs[tags[:, :-1], tags[:, 1:]] + emitted[:, 1:]
    path = numpy.concatenate([numpy.zeros((len(tags), 1), dtype=steps.dtype), steps.cumsum(axis=1)], axis=1)
    # After a span's last tag: every next tag but those that would continue the chunk.
    stop = numpy.where(continues[tags[:, :-1]], IMPOSSIBLE, pairs[tags[:, :-1]])
    after = logsumexp(stop + emissions[:, 1:] + beta[:, 1:], axis=2)
    is_last = numpy.arange(emissions.shape[1])[None, :] == (lengths - 1)[:, None]
    after = numpy.where(is_last, end[tags], numpy.concatenate([after, end[tags[:, -1:]]], axis=1))
    doc, first, last = spans[:, 0], spans[:, 1], spans[:, 2] - 1
    inside = path[doc, last] - path[doc, first]
    return alpha[doc, first, tags[doc, first]] + inside + after[doc, last] - log_z[doc]
