"""``annotate`` on Ray Data and locally: output equal to ``nlp.pipe`` row for row, nothing lost when a worker
dies or input is malformed, and a rerun that skips finished shards. One loopback Ray (2 CPUs) serves all."""

import json

import pyarrow
import pyarrow.parquet
import pytest
import spacy
from annotate_inputs import short_texts, write_jsonl

from spacy_seqlab.scale import AnnotateSettings, annotate, read_output
from spacy_seqlab.scale import output as output_module
from spacy_seqlab.scale.annotator import doc_records
from spacy_seqlab.scale.output import OutputMismatchError


class Score(float):
    """A span score that equals another within 1e-5: Docs batched differently are padded to other widths,
    which moves float32 sums in the last digits."""

    def __eq__(self, other):
        return other is not None and abs(float(self) - float(other)) <= 1e-5

    __hash__ = float.__hash__


def _rounded(records):
    return [(*r[:4], None if r[4] is None else Score(r[4])) for r in records]


def _records(row):
    return _rounded([tuple(r.values()) for r in row["records"]])


def test_ray_equals_nlp_pipe_row_for_row_and_local_engine_writes_the_same_files(ray_cluster, tagger_pipeline, tmp_path):
    import ray

    assert {node["NodeManagerAddress"] for node in ray.nodes()} == {"127.0.0.1"}
    texts = short_texts(5000)
    source = write_jsonl(tmp_path / "docs.jsonl", texts)
    common = dict(shard_size=1000, batch_size=128)
    on_ray = annotate(str(tagger_pipeline), str(source), tmp_path / "ray", AnnotateSettings(workers=2, **common))
    assert (on_ray.engine, on_ray.rows, on_ray.errors, on_ray.shards_written) == ("ray", 5000, 0, 5)

    nlp = spacy.load(tagger_pipeline)
    expected = [_rounded(doc_records(doc)) for doc in nlp.pipe(texts)]
    assert sum(map(len, expected)) > 1000  # the trained tagger finds entities: the comparison is not of empties
    rows = list(read_output(tmp_path / "ray"))
    assert [row["id"] for row in rows] == [f"doc{i}" for i in range(5000)]
    assert all(row["error"] is None for row in rows)
    assert [_records(row) for row in rows] == expected

    # The local engine, on the first shard's documents, writes the same rows (the source names the other file).
    first = write_jsonl(tmp_path / "first.jsonl", texts[:1000])
    local = annotate(str(tagger_pipeline), str(first), tmp_path / "local", AnnotateSettings(engine="local", **common))
    assert (local.engine, local.rows) == ("local", 1000)
    local_rows = list(read_output(tmp_path / "local"))
    assert [{**row, "source": None, "records": _records(row)} for row in local_rows] == [
        {**row, "source": None, "records": _records(row)} for row in rows[:1000]
    ]


def test_a_killed_worker_loses_no_row_and_duplicates_none(ray_cluster, ruler_pipeline, faults_code, tmp_path):
    texts = short_texts(600, seed=1)
    texts[300] = "KILL"
    marker = faults_code.parent / "kill.marker"
    marker.write_text("")
    source = write_jsonl(tmp_path / "docs.jsonl", texts)
    settings = AnnotateSettings(workers=2, batch_size=20, shard_size=250, code=str(faults_code))
    report = annotate(str(ruler_pipeline), str(source), tmp_path / "out", settings)
    assert not marker.exists() and marker.with_name("kill.marker.claimed").exists()  # a worker did die
    rows = list(read_output(tmp_path / "out"))
    assert [row["id"] for row in rows] == [f"doc{i}" for i in range(600)]
    assert report.rows == 600 and report.errors == 0
    nlp = spacy.load(ruler_pipeline)
    assert [_records(row) for row in rows] == [_rounded(doc_records(doc)) for doc in nlp.pipe(texts)]


def test_malformed_input_gives_one_row_with_an_error_each(ruler_pipeline, faults_code, tmp_path):
    folder = tmp_path / "input"
    folder.mkdir()
    lines = [
        json.dumps({"id": "a", "text": "alice in paris"}).encode(),
        b'{"id": "b", "text": "caf\xe9 bad utf-8"}',
        json.dumps({"id": "c", "body": "no text field"}).encode(),
        b'{"id": "d", "text": ',
        json.dumps({"id": "e", "text": 42}).encode(),
        json.dumps({"id": "f", "text": ""}).encode(),
        json.dumps({"id": "g", "text": "x" * 1_000_001}).encode(),
        json.dumps({"id": "a", "text": "a duplicate id"}).encode(),
        json.dumps({"id": "h", "text": "BOOM"}).encode(),
        json.dumps({"text": "paris without an id"}).encode(),
    ]
    (folder / "a.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (folder / "b.txt").write_bytes(b"alice\n\xff\xfe broken\n\nparis\n")
    table = pyarrow.table({"id": ["p1", "p2"], "text": ["alice again", None]})
    pyarrow.parquet.write_table(table, folder / "c.parquet")

    # The local engine (the same Annotator as a Ray actor, see the first test): no actors to start here.
    settings = AnnotateSettings(engine="local", batch_size=4, shard_size=5, code=str(faults_code))
    report = annotate(str(ruler_pipeline), str(folder), tmp_path / "out", settings)
    rows = list(read_output(tmp_path / "out"))
    assert report.rows == len(rows) == 16
    by_source = {row["source"].rsplit("/", 1)[1]: row for row in rows}
    errors = {where: row["error"] for where, row in by_source.items()}
    assert errors == {
        "a.jsonl:1": None,
        "a.jsonl:2": "invalid UTF-8 at byte 24",
        "a.jsonl:3": "missing text field 'text'",
        "a.jsonl:4": errors["a.jsonl:4"],
        "a.jsonl:5": "text field 'text' is int, not a string",
        "a.jsonl:6": None,
        "a.jsonl:7": "text of 1,000,001 characters is over the pipeline's max_length 1,000,000",
        "a.jsonl:8": f"duplicate id 'a' (first at {folder / 'a.jsonl'}:1)",
        "a.jsonl:9": "ValueError: boom on purpose",
        "a.jsonl:10": None,
        "b.txt:1": None,
        "b.txt:2": "invalid UTF-8 at byte 0",
        "b.txt:3": None,
        "b.txt:4": None,
        "c.parquet:1": None,
        "c.parquet:2": "text field 'text' is NoneType, not a string",
    }
    assert errors["a.jsonl:4"].startswith("invalid JSON")
    assert report.errors == 9
    assert _records(by_source["a.jsonl:1"]) == [("ents", 0, 5, "PER", None), ("ents", 9, 14, "LOC", None)]
    assert by_source["a.jsonl:10"]["id"] == str(folder / "a.jsonl") + ":10"
    assert [r["records"] for r in rows if r["error"]] == [[]] * 9


def test_an_interrupted_job_resumes_from_its_finished_shards(ruler_pipeline, faults_code, tmp_path, monkeypatch):
    source = write_jsonl(tmp_path / "docs.jsonl", short_texts(1000, seed=2))
    settings = AnnotateSettings(engine="local", batch_size=50, shard_size=100, code=str(faults_code))
    annotate(str(ruler_pipeline), str(source), tmp_path / "whole", settings)

    write_shard, written = output_module.write_shard, []

    def interrupted_after_three(*args, **kwargs):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(write_shard(*args, **kwargs))
        return written[-1]

    monkeypatch.setattr("spacy_seqlab.scale.engines.write_shard", interrupted_after_three)
    with pytest.raises(KeyboardInterrupt):
        annotate(str(ruler_pipeline), str(source), tmp_path / "resumed", settings)
    monkeypatch.undo()
    before = {path.name: path.stat().st_mtime_ns for path in written}
    assert len(before) == 3

    report = annotate(str(ruler_pipeline), str(source), tmp_path / "resumed", settings)
    assert (report.shards_skipped, report.shards_written, report.rows) == (3, 7, 700)
    assert {path.name: path.stat().st_mtime_ns for path in written} == before  # finished shards not rewritten
    whole = sorted((tmp_path / "whole").glob("part-*"))
    assert [p.name for p in whole] == [p.name for p in sorted((tmp_path / "resumed").glob("part-*"))]
    assert all(p.read_bytes() == (tmp_path / "resumed" / p.name).read_bytes() for p in whole)

    with pytest.raises(OutputMismatchError, match="shard_size"):
        annotate(str(ruler_pipeline), str(source), tmp_path / "resumed", AnnotateSettings(shard_size=50))
