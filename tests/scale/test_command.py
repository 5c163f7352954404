"""The ``annotate`` command: options from ``AnnotateSettings``, a summary line, one-line errors; registered on
spaCy's CLI through the ``spacy_cli`` entry point."""

import json
from importlib.metadata import entry_points

import pytest
from typer.testing import CliRunner

from spacy_seqlab.cli.commands import app
from spacy_seqlab.scale import AnnotateSettings, read_output


def test_annotate_command_writes_shards_and_reports_errors_in_one_line(ruler_pipeline, tmp_path):
    source = tmp_path / "docs.txt"
    source.write_text("alice lives in paris\nbob\n", encoding="utf8")
    out = tmp_path / "out"
    args = ["annotate", str(ruler_pipeline), str(source), str(out), "--engine", "local", "--format", "parquet"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 rows (0 with an error) in 1 shard(s) written, 0 already finished; engine local" in result.output
    rows = list(read_output(out))
    assert [[r["label"] for r in row["records"]] for row in rows] == [["PER", "LOC"], []]
    assert json.loads((out / "_job.json").read_text())["format"] == "parquet"

    again = CliRunner().invoke(app, args)
    assert "0 rows (0 with an error) in 0 shard(s) written, 1 already finished" in again.output

    bad = CliRunner().invoke(app, ["annotate", str(ruler_pipeline), str(source), str(out), "--workers", "0"])
    assert bad.exit_code == 1 and bad.output.strip() == "error: workers must be a positive integer, got 0"
    missing = CliRunner().invoke(app, ["annotate", str(ruler_pipeline), str(tmp_path / "nothing*.jsonl"), str(out)])
    assert missing.exit_code == 1 and "is not a file, a folder with files, or a glob" in missing.output
    no_pipeline = CliRunner().invoke(app, ["annotate", str(tmp_path / "nlp"), str(source), str(tmp_path / "o2")])
    assert no_pipeline.exit_code == 1 and "is neither a saved pipeline folder nor an installed" in no_pipeline.output


def test_settings_name_the_bad_setting_and_the_command_is_on_spacys_cli():
    with pytest.raises(ValueError, match="engine must be one of ray, local, got 'spark'"):
        AnnotateSettings(engine="spark")
    with pytest.raises(ValueError, match="address must be local, auto"):
        AnnotateSettings(address="somewhere")
    with pytest.raises(ValueError, match="gpus_per_worker above 1 must be a whole number"):
        AnnotateSettings(gpus_per_worker=1.5)
    commands = {ep.name: ep.value for ep in entry_points(group="spacy_cli")}
    assert commands["seqlab-annotate"] == "spacy_seqlab.cli.annotate:annotate_command"
