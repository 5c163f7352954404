"""Calibration: ECE and reliability bins computed by hand, pooling equals computing on all pairs,
span correctness read by characters and label, and the project report's ECE column and plot."""

import importlib.util
import json
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span, SpanGroup

from spacy_seqlab.core.calibration import calibration, pool_bins, span_confidence_pairs

REPORT = Path(__file__).resolve().parents[2] / "project" / "scripts" / "report.py"


def test_ece_and_bins_by_hand():
    # Bin [0.2, 0.4): confidences 0.3, 0.3, one of two correct → gap 0.2; bin [0.8, 1]: 0.9 and 1.0, both right.
    result = calibration([0.3, 0.3, 0.9, 1.0], [True, False, True, True], n_bins=5)
    assert result["n"] == 4
    assert result["ece"] == pytest.approx((2 * 0.2 + 2 * 0.05) / 4)
    counts = [b["count"] for b in result["bins"]]
    assert counts == [0, 2, 0, 0, 2]  # 1.0 falls in the last bin
    assert result["bins"][1]["accuracy"] == 0.5 and result["bins"][4]["confidence"] == pytest.approx(0.95)
    assert result["bins"][0]["accuracy"] is None
    assert calibration([], [])["ece"] is None
    assert calibration([0.0, 1.0], [False, True])["ece"] == 0.0


def test_bad_confidences_are_refused():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        calibration([1.2], [True])
    with pytest.raises(ValueError, match="2 confidences but 1"):
        calibration([0.1, 0.2], [True])
    with pytest.raises(ValueError, match="n_bins"):
        calibration([0.1], [True], n_bins=0)


def test_pooled_bins_equal_the_calibration_of_all_pairs():
    rng = numpy.random.default_rng(0)
    conf = rng.uniform(size=200)
    hits = rng.uniform(size=200) < conf
    parts = [calibration(conf[:70], hits[:70]), calibration(conf[70:], hits[70:])]
    pooled, whole = pool_bins(p["bins"] for p in parts), calibration(conf, hits)
    assert pooled["ece"] == pytest.approx(whole["ece"]) and pooled["n"] == whole["n"] == 200
    for a, b in zip(pooled["bins"], whole["bins"]):
        assert a["count"] == b["count"] and a["accuracy"] == pytest.approx(b["accuracy"])


def test_span_pairs_match_gold_by_characters_and_label():
    nlp = spacy.blank("en")
    gold = Doc(nlp.vocab, words=["Alice", "visited", "New", "York"], ents=["B-PER", "O", "B-LOC", "I-LOC"])
    predicted = nlp.make_doc("Alice visited New York")
    # "Alice" PER is right; "New" LOC has the wrong extent.
    spans = [Span(predicted, 0, 1, label="PER"), Span(predicted, 2, 3, label="LOC")]
    predicted.spans["ner"] = SpanGroup(predicted, name="ner", spans=spans, attrs={"scores": numpy.array([0.9, 0.4])})
    assert span_confidence_pairs([(predicted, gold)], "ner") == (
        [pytest.approx(0.9), pytest.approx(0.4)],
        [True, False],
    )
    with pytest.raises(ValueError, match=r"no span confidences in doc.spans\['other'\]"):
        span_confidence_pairs([(predicted, gold)], "other")


def _run(name, method, ece_pairs):
    run = {"name": name, "method": method, "setting": "s", "test_docs": 3, "p": 0.5, "r": 0.5, "f": 0.5}
    run.update(dev_score=0.5, train_seconds=1.0, words_per_second=10.0)
    run["calibration"] = calibration(*ece_pairs) if ece_pairs else None
    return run


def test_report_has_an_ece_column_and_a_reliability_plot(tmp_path):
    spec = importlib.util.spec_from_file_location("report", REPORT)
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    runs = [
        _run("a", "seqlab tagger", ([0.9, 0.8, 0.2], [True, True, False])),
        _run("a2", "seqlab tagger", ([0.95], [False])),
        _run("b", "spaCy ner", None),
    ]
    rows = report.summarize(runs)
    assert rows[0]["runs"] == 2 and rows[0]["reliability"]["n"] == 4 and rows[1]["ece"] is None
    report.write_markdown(rows, tmp_path / "results.md", [])
    table = (tmp_path / "results.md").read_text()
    assert "| ECE |" in table and table.count("| – |") >= 1
    report.write_reliability_plot(rows, tmp_path / "results_calibration.png", "t")
    assert (tmp_path / "results_calibration.png").read_bytes()[:4] == b"\x89PNG"
    json.dumps(rows)  # results.json stays serializable
