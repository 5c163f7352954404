"""Calibration of span confidences: expected calibration error and reliability bins.

A tagger stores a confidence per predicted span (``doc.spans[KEY].attrs["scores"]``, as spaCy's
``spancat`` does). It is calibrated when, among the spans given confidence about c, a fraction c
is correct. :func:`calibration` bins (confidence, correct) pairs into equal-width bins over [0, 1]
and returns, per bin, the mean confidence and the accuracy, and the expected calibration error
(ECE; Naeini et al., 2015; Guo et al., 2017): the bins' gaps |accuracy - confidence|, weighted by
their share of the spans. :func:`span_confidence_pairs` reads the pairs from predicted and gold
Docs: a span is correct when a gold span has the same characters and label (seqeval's strict
match, independent of tokenization). :func:`fit_temperature` picks the temperature whose
confidences best predict correctness on held-out data (temperature scaling, Guo et al., 2017).
"""

from typing import Any, Callable, Dict, Iterable, List, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span

from .settings import check_int


def calibration(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> Dict[str, Any]:
    """ECE and reliability bins of (confidence, correct) pairs.

    Returns ``ece`` (None without pairs), ``n`` (the number of pairs) and ``bins``: per bin its
    ``lower`` and ``upper`` edge, ``count``, ``confidence`` (mean) and ``accuracy`` (None when empty).
    Confidence 1.0 falls in the last bin. Confidences outside [0, 1] raise a ValueError.
    """
    check_int("n_bins", n_bins)
    conf = numpy.asarray(confidences, dtype=numpy.float64).reshape(-1)
    hits = numpy.asarray(correct, dtype=numpy.float64).reshape(-1)
    if len(conf) != len(hits):
        raise ValueError(f"Got {len(conf)} confidences but {len(hits)} correctness values")
    if len(conf) and (not numpy.isfinite(conf).all() or conf.min() < 0 or conf.max() > 1):
        raise ValueError(f"Confidences must lie in [0, 1], got {conf.min()}..{conf.max()}")
    edges = numpy.linspace(0.0, 1.0, n_bins + 1)
    which = numpy.clip((conf * n_bins).astype(numpy.int64), 0, n_bins - 1)
    counts = numpy.bincount(which, minlength=n_bins)
    sum_conf = numpy.bincount(which, weights=conf, minlength=n_bins)
    sum_hits = numpy.bincount(which, weights=hits, minlength=n_bins)
    filled = counts > 0
    mean_conf = numpy.divide(sum_conf, counts, out=numpy.zeros(n_bins), where=filled)
    accuracy = numpy.divide(sum_hits, counts, out=numpy.zeros(n_bins), where=filled)
    ece = float((counts * numpy.abs(accuracy - mean_conf)).sum() / len(conf)) if len(conf) else None
    bins = [
        {
            "lower": float(edges[b]),
            "upper": float(edges[b + 1]),
            "count": int(counts[b]),
            "confidence": float(mean_conf[b]) if filled[b] else None,
            "accuracy": float(accuracy[b]) if filled[b] else None,
        }
        for b in range(n_bins)
    ]
    return {"ece": ece, "n": int(len(conf)), "bins": bins}


def pool_bins(bin_lists: Iterable[List[Dict[str, Any]]]) -> Dict[str, Any]:
    """One reliability table from several runs' bins (same edges), weighted by counts, with its ECE."""
    pooled: List[Dict[str, Any]] = []
    for bins in bin_lists:
        if not pooled:
            pooled = [{**b, "sum_conf": 0.0, "sum_hits": 0.0, "count": 0} for b in bins]
        if [(b["lower"], b["upper"]) for b in bins] != [(b["lower"], b["upper"]) for b in pooled]:
            raise ValueError("Cannot pool reliability bins with different edges")
        for into, b in zip(pooled, bins):
            if b["count"]:
                into["count"] += b["count"]
                into["sum_conf"] += b["confidence"] * b["count"]
                into["sum_hits"] += b["accuracy"] * b["count"]
    total = sum(b["count"] for b in pooled)
    out = []
    for b in pooled:
        n = b["count"]
        out.append(
            {
                "lower": b["lower"],
                "upper": b["upper"],
                "count": n,
                "confidence": b["sum_conf"] / n if n else None,
                "accuracy": b["sum_hits"] / n if n else None,
            }
        )
    ece = sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in out if b["count"]) / total if total else None
    return {"ece": ece, "n": total, "bins": out}


def span_confidence_pairs(pairs: Iterable[Tuple[Doc, Doc]], key: str) -> Tuple[List[float], List[bool]]:
    """(confidences, correct) of the spans in each predicted Doc's ``doc.spans[key]`` against the
    gold Doc's ``ents``; a predicted Doc without the group (or its scores) raises a ValueError."""
    confidences: List[float] = []
    correct: List[bool] = []
    for predicted, gold in pairs:
        if key not in predicted.spans or "scores" not in predicted.spans[key].attrs:
            raise ValueError(
                f"A predicted Doc has no span confidences in doc.spans[{key!r}].attrs['scores']: "
                "is the component a seqlab tagger of that name?"
            )
        group = predicted.spans[key]
        confidences.extend(float(s) for s in group.attrs["scores"])
        correct.extend(correct_spans(group, gold.ents))
    return confidences, correct


def correct_spans(predicted: Iterable[Span], gold: Iterable[Span]) -> List[bool]:
    """Whether each predicted span has a gold span with its characters and label (seqeval's strict
    match, independent of the two Docs' tokenization)."""
    truth = {(s.start_char, s.end_char, s.label_) for s in gold}
    return [(s.start_char, s.end_char, s.label_) in truth for s in predicted]


# Temperatures tried by fit_temperature: log-spaced, then refined around the best.
TEMPERATURE_RANGE = (0.125, 16.0)
TEMPERATURE_STEPS = 57


def correctness_log_loss(confidences: numpy.ndarray, correct: numpy.ndarray) -> float:
    """Mean binary cross-entropy of the confidences as predictions of correctness."""
    conf = numpy.clip(confidences, 1e-7, 1 - 1e-7)
    return float(-(correct * numpy.log(conf) + (1 - correct) * numpy.log1p(-conf)).mean())


def fit_temperature(confidences_at: Callable[[float], numpy.ndarray], correct: Sequence[bool]) -> Dict[str, Any]:
    """The temperature T in [1/8, 16] whose confidences (``confidences_at(T)``, one per span, in the
    order of ``correct``) minimize the log loss of predicting each span's correctness.

    Temperature scaling has one parameter, so a few hundred held-out spans fit it; a log-spaced grid
    and a finer grid around its best point are enough (the loss is smooth in log T, and each point
    costs one forward-backward over the data, not a model forward). Returns ``temperature``, and
    ``log_loss`` and ``ece`` before (T = 1) and after; a ValueError without spans.
    """
    hits = numpy.asarray(correct, dtype=numpy.float64).reshape(-1)
    if not len(hits):
        raise ValueError("No predicted spans to calibrate on: the data has no spans the component predicts")

    def loss(t: float) -> float:
        return correctness_log_loss(numpy.asarray(confidences_at(t), dtype=numpy.float64), hits)

    low, high = (numpy.log(x) for x in TEMPERATURE_RANGE)
    coarse = numpy.linspace(low, high, TEMPERATURE_STEPS)
    best = int(numpy.argmin([loss(float(numpy.exp(x))) for x in coarse]))
    step = coarse[1] - coarse[0]
    fine = numpy.linspace(max(low, coarse[best] - step), min(high, coarse[best] + step), 21)
    losses = [loss(float(numpy.exp(x))) for x in fine]
    temperature = float(numpy.exp(fine[int(numpy.argmin(losses))]))
    before, after = confidences_at(1.0), confidences_at(temperature)
    return {
        "temperature": temperature,
        "n": int(len(hits)),
        "log_loss_before": correctness_log_loss(numpy.asarray(before, dtype=numpy.float64), hits),
        "log_loss_after": float(min(losses)),
        "ece_before": calibration(before, hits.astype(bool))["ece"],
        "ece_after": calibration(after, hits.astype(bool))["ece"],
    }
