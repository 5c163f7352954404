"""Is one system better than another on the same test documents? A paired bootstrap over documents.

Per document, :func:`span_counts` reads the numbers seqeval's strict micro F is made of (correct,
predicted and gold spans, with :func:`.scoring.seqeval_prf`). :func:`paired_bootstrap` resamples the
documents with replacement, the same draw for both systems, and recomputes both F scores from the summed
counts of each draw (micro F = 2 * correct / (predicted + gold)): the difference B - A on the full set,
its percentile interval and a two-sided p-value (twice the smaller share of draws on either side of 0).
All draws are one matrix product, so 1,000 samples over a few hundred documents take milliseconds.
"""

from typing import Dict, Iterable, Sequence

import numpy
from spacy.training import Example

from .schemes import OUTSIDE
from .scoring import seqeval_prf
from .settings import check_int, check_number
from .targets import Target

COUNT_COLUMNS = ("n_correct", "n_pred", "n_gold")


def span_counts(examples: Iterable[Example], target: str = "ents", scheme: str = "iob2") -> numpy.ndarray:
    """One row per example: its (correct, predicted, gold) spans under seqeval's strict ``scheme``.

    Gold tags are aligned to the predicted tokens as the seqeval scorer aligns them (a missing gold
    token is ``O``)."""
    parsed = Target.parse(target)
    rows = []
    for example in examples:
        gold = [tag or OUTSIDE for tag in parsed.gold_tags(example, scheme)]
        pred = [tag or OUTSIDE for tag in parsed.doc_tags(example.predicted, scheme)]
        result = seqeval_prf([gold], [pred], scheme)
        rows.append([result[column] for column in COUNT_COLUMNS])
    return numpy.asarray(rows, dtype=numpy.float64).reshape(-1, len(COUNT_COLUMNS))


def micro_f(counts: numpy.ndarray) -> numpy.ndarray:
    """Micro F from summed (correct, predicted, gold) counts in the last axis; 0.0 where nothing was found."""
    denominator = counts[..., 1] + counts[..., 2]
    safe = numpy.where(denominator > 0, denominator, 1.0)
    return numpy.where(denominator > 0, 2.0 * counts[..., 0] / safe, 0.0)


def paired_bootstrap(
    counts_a: Sequence[Sequence[float]],
    counts_b: Sequence[Sequence[float]],
    samples: int = 1000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Dict[str, float]:
    """Paired bootstrap of F(B) - F(A) over documents, from :func:`span_counts` of both systems on the
    same documents in the same order.

    Returns ``f_a``, ``f_b``, ``difference`` (on the full set), ``low`` and ``high`` (the percentile
    interval at ``confidence``), ``p_value`` (two-sided, for "no difference") and ``samples``."""
    check_int("samples", samples)
    check_number("confidence", confidence, low=0, high=1, low_open=True)
    a = numpy.asarray(counts_a, dtype=numpy.float64)
    b = numpy.asarray(counts_b, dtype=numpy.float64)
    if a.ndim != 2 or a.shape[1] != len(COUNT_COLUMNS) or a.shape != b.shape:
        raise ValueError(
            f"paired_bootstrap needs two (documents, 3) count tables of the same documents, got {a.shape} and {b.shape}"
        )
    if not len(a):
        raise ValueError("paired_bootstrap needs at least one document")
    rng = numpy.random.default_rng(seed)
    n_docs = len(a)
    # How often each document is drawn in each sample: (samples, documents).
    draws = rng.integers(0, n_docs, size=(samples, n_docs))
    weights = numpy.zeros((samples, n_docs))
    numpy.add.at(weights, (numpy.arange(samples)[:, None], draws), 1.0)
    differences = micro_f(weights @ b) - micro_f(weights @ a)
    f_a, f_b = float(micro_f(a.sum(axis=0))), float(micro_f(b.sum(axis=0)))
    tail = (1.0 - confidence) / 2.0
    low, high = numpy.quantile(differences, [tail, 1.0 - tail])
    p_value = min(1.0, 2.0 * min(float(numpy.mean(differences <= 0)), float(numpy.mean(differences >= 0))))
    return {
        "f_a": f_a,
        "f_b": f_b,
        "difference": f_b - f_a,
        "low": float(low),
        "high": float(high),
        "p_value": p_value,
        "samples": samples,
    }
