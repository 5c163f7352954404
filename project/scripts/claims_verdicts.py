"""Verdicts computed from bootstrap intervals, and the row that states a claim with its measurements, comparisons
and verdict."""

from typing import List, Tuple

from claims_runs import Experiment

HOLDS, FAILS, INCONCLUSIVE, MISSING = "holds", "does not hold", "inconclusive at this scale", "missing runs"
VERDICTS = (HOLDS, FAILS, INCONCLUSIVE, MISSING)


def better(comparisons: List[dict]) -> Tuple[str, str]:
    """Verdict of a claim that every comparison is positive."""
    missing = [c["missing"] for c in comparisons if "missing" in c]
    if missing:
        return MISSING, "; ".join(dict.fromkeys(missing))
    if any(c["high"] < 0 for c in comparisons):
        return FAILS, "an interval lies below 0"
    if all(c["low"] > 0 for c in comparisons):
        return HOLDS, "every interval lies above 0"
    return INCONCLUSIVE, "an interval contains 0"


def any_better(comparisons: List[dict]) -> Tuple[str, str]:
    """Verdict of a claim that at least one comparison is positive (intervals Bonferroni-corrected by the caller)."""
    present = [c for c in comparisons if "missing" not in c]
    if any(c["low"] > 0 for c in present):
        return HOLDS, "an interval lies above 0"
    if len(present) < len(comparisons):
        return MISSING, "; ".join(dict.fromkeys(c["missing"] for c in comparisons if "missing" in c))
    if all(c["high"] < 0 for c in present):
        return FAILS, "every interval lies below 0"
    return INCONCLUSIVE, "no interval lies above 0"


def not_worse(comparison: dict, margin: float) -> Tuple[str, str]:
    if "missing" in comparison:
        return MISSING, comparison["missing"]
    if comparison["low"] > -margin:
        return HOLDS, f"the interval lies above −{margin:g}"
    if comparison["high"] < 0:
        return FAILS, "the interval lies below 0"
    return INCONCLUSIVE, f"the interval reaches below −{margin:g} and above 0"


def no_gain(comparison: dict, margin: float) -> Tuple[str, str]:
    if "missing" in comparison:
        return MISSING, comparison["missing"]
    if comparison["high"] < margin:
        return HOLDS, f"the interval lies below +{margin:g}"
    if comparison["low"] > 0:
        return FAILS, "the interval lies above 0"
    return INCONCLUSIVE, f"the interval reaches above +{margin:g} and below 0"


def claim_row(
    claim_id: str,
    claim: str,
    experiment: Experiment,
    measured: List[dict],
    comparisons: List[dict],
    verdict: Tuple[str, str],
    rule: str,
    published: str,
) -> dict:
    label = f" [{experiment.label}]" if experiment.label else ""
    return {
        "id": claim_id + label,
        "claim": claim,
        "experiment": experiment.name,
        "folder": str(experiment.folder),
        "measured": measured,
        "comparisons": comparisons,
        "verdict": verdict[0],
        "reason": verdict[1],
        "rule": rule,
        "published": published,
        "scale": experiment.scale() + test_docs(measured),
        "command": experiment.command(),
    }


def test_docs(measured: List[dict]) -> str:
    sizes = sorted({entry["test_docs"] for entry in measured if entry.get("test_docs") is not None})
    return f"; test {' / '.join(map(str, sizes))} docs" if sizes else ""
