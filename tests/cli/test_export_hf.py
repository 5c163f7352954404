"""``spacy seqlab-export-hf``: registered on spaCy's CLI, writes a peft adapter, fails cleanly on bad input."""

import json
from importlib.metadata import entry_points

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from typer.testing import CliRunner

from spacy_seqlab.cli.export_hf import app, seqlab_export_hf_cli

COMPONENT = "seqlab_bidir_tagger"


@pytest.fixture(scope="module")
def pipeline_dir(tiny_model_dir, tmp_path_factory):
    """A saved pipeline with a sentencizer and an initialized LoRA tagger on a tiny Llama."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    backbone = {"name": str(tiny_model_dir("llama")), "unmask": "01", "lora": {"r": 4}, "window": 32, "stride": 24}
    nlp.add_pipe(COMPONENT, config={"model": {"backbone": backbone}})
    doc = Doc(nlp.vocab, words=["Alice", "met", "Bob"], ents=["B-PER", "O", "B-PER"])
    nlp.initialize(lambda: [Example(nlp.make_doc(doc.text), doc)])
    path = tmp_path_factory.mktemp("export_cli") / "pipeline"
    nlp.to_disk(path)
    return path


def _run(*args):
    result = CliRunner().invoke(app, ["seqlab-export-hf", *map(str, args)])
    return result.exit_code, " ".join(result.output.split())  # wasabi wraps long lines


def test_command_is_on_spacy_cli_and_writes_a_peft_adapter(pipeline_dir, tmp_path):
    # spaCy's CLI imports its commands from the spacy_cli entry points.
    (entry,) = [e for e in entry_points(group="spacy_cli") if e.name == "seqlab-export-hf"]
    assert entry.load() is seqlab_export_hf_cli
    out = tmp_path / "hf"
    code, output = _run(pipeline_dir, COMPONENT, out)
    assert code == 0, output
    assert "Exported" in output and "load_exported" in output
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert adapter["task_type"] == "TOKEN_CLS"
    config = json.loads((out / "config.json").read_text())
    assert config["id2label"] == {"0": "O", "1": "B-PER", "2": "I-PER"}
    assert config["seqlab"]["unmask_layers"] == [1]
    assert (out / "adapter_model.safetensors").exists() and (out / "base" / "model.safetensors").exists()


def test_no_include_base_leaves_the_base_out_and_says_how_to_load(pipeline_dir, tmp_path):
    out = tmp_path / "hf"
    code, output = _run(pipeline_dir, COMPONENT, out, "--no-include-base")
    assert code == 0, output
    assert not (out / "base").exists() and "pass base=" in output


@pytest.mark.parametrize(
    "component,message",
    [
        ("missing", "has no component 'missing'"),
        ("sentencizer", "only seqlab_bidir_tagger and seqlab_multitask_ner"),
    ],
)
def test_bad_component_exits_1_naming_the_problem(pipeline_dir, tmp_path, component, message):
    code, output = _run(pipeline_dir, component, tmp_path / "out")
    assert code == 1 and message in output and "Traceback" not in output


def test_non_empty_output_dir_is_refused(pipeline_dir, tmp_path):
    (tmp_path / "stale.txt").write_text("old export")
    code, output = _run(pipeline_dir, COMPONENT, tmp_path)
    assert code == 1 and "not an empty folder" in output
