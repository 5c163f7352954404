"""The shipped configs follow spaCy's conventions: DocBins from ``paths``, only their own scores,
``spacy debug data`` runs, and initializing never changes a frozen sourced pipe."""

import functools
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
import spacy.util
from spacy.cli.debug_data import debug_data
from spacy.cli.train import train
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.util import combine_score_weights, load_config

from spacy_seqlab.data.conll import read_conll, select_split, sentences_to_docs
from spacy_seqlab.data.resources import wnut16_path

ROOT = Path(__file__).parents[1]
SHIPPED = sorted((ROOT / "configs").glob("*.cfg"))
# The project's own config too (spaCy's ner on spacy-transformers).
CONFIGS = SHIPPED + sorted((ROOT / "project" / "configs").glob("*.cfg"))


def _id(path: Path) -> str:
    return path.name


@pytest.mark.parametrize("path", CONFIGS, ids=_id)
def test_every_config_reads_docbins_from_paths(path):
    config = load_config(path, interpolate=False)
    for split in ("train", "dev"):
        reader = config["corpora"][split]
        assert reader["@readers"] == "spacy.Corpus.v1" and reader["path"] == f"${{paths.{split}}}", split


@functools.lru_cache(maxsize=None)
def _source(name: str) -> Language:
    return spacy.load(name)


def _default_score_weights(config_path: Path) -> Dict[str, Dict[str, float]]:
    """Each component's default score weights: the scores it produces (from its factory, or its source)."""
    config = load_config(config_path, interpolate=False)
    spacy.blank("en")  # a Language instance loads the factories declared as entry points
    weights = {}
    for name in config["nlp"]["pipeline"]:
        block = config["components"][name]
        if "source" in block:
            meta = _source(block["source"]).get_pipe_meta(name)
        else:
            meta = Language.get_factory_meta(block["factory"])
        weights[name] = dict(meta.default_score_weights)
    return weights


@pytest.mark.parametrize("path", CONFIGS, ids=_id)
def test_score_weights_name_only_the_scores_of_the_trained_pipes(path):
    config = load_config(path, interpolate=False)
    defaults = _default_score_weights(path)
    trained = {
        key for name, keys in defaults.items() if name not in config["training"]["frozen_components"] for key in keys
    }
    weights = dict(config["training"]["score_weights"])
    assert set(weights) <= {key for keys in defaults.values() for key in keys}, "a score no pipe produces"
    # What spacy train shows and weighs: the pipes' default weights, overridden by the config's.
    shown = {
        key for key, weight in combine_score_weights(list(defaults.values()), weights).items() if weight is not None
    }
    assert shown and shown <= trained, f"columns of frozen pipes: {sorted(shown - trained)}"


def _wnut16_docbins(directory: Path, n_train: int, n_dev: int) -> Dict[str, Path]:
    sentences = list(read_conll(wnut16_path()))
    vocab = spacy.blank("en").vocab
    paths = {}
    for split, n in (("train", n_train), ("dev", n_dev)):
        paths[split] = directory / f"{split}.spacy"
        DocBin(docs=sentences_to_docs(select_split(sentences, split)[:n], vocab)).to_disk(paths[split])
    return paths


def _table_rows(output: str) -> List[List[str]]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("E ")) + 2  # header, rule
    rows = []
    for line in lines[start:]:
        cells = line.split()
        if not cells or not cells[0].isdigit():
            break
        rows.append(cells)
    return rows


def test_training_reads_paths_and_shows_its_own_scores_as_epochs_advance(tiny_model_dir, tmp_path, capsys):
    nlp = spacy.blank("en")
    train_docs = [
        Doc(nlp.vocab, words=["Alice", "lives", "in", "Paris"], ents=["B-PER", "O", "O", "B-LOC"]),
        Doc(nlp.vocab, words=["Bob", "went", "to", "Rome", "today"], ents=["B-PER", "O", "O", "B-LOC", "O"]),
    ]
    DocBin(docs=train_docs).to_disk(tmp_path / "tiny.spacy")
    overrides = {
        "paths.train": str(tmp_path / "tiny.spacy"),
        "paths.dev": str(tmp_path / "tiny.spacy"),
        "components.seqlab_ner.model.backbone.name": str(tiny_model_dir("bert")),
        "training.max_steps": 6,
        "training.eval_frequency": 3,
        "training.batcher.size": 2,
    }
    train(ROOT / "configs" / "multitask_minilm_wnut16_vanilla_cpu.cfg", tmp_path / "out", overrides=overrides)
    output = capsys.readouterr().out
    header = next(line for line in output.splitlines() if line.startswith("E "))
    assert header.split()[2:] == ["LOSS", "SEQLA...", "SEQEVAL_F", "SEQEVAL_P", "SEQEVAL_R", "SCORE"]
    rows = _table_rows(output)
    # One batch of the two given docs per epoch: the epoch column counts the steps.
    assert [(int(row[0]), int(row[1])) for row in rows] == [(0, 0), (3, 3), (6, 6)]


def _tiny_model_overrides(path: Path, tiny_model_dir) -> Dict[str, object]:
    """Overrides that put a tiny random model in place of each seqlab component's model (CPU, no 4-bit)."""
    overrides: Dict[str, object] = {}
    components = load_config(path, interpolate=False)["components"]
    for name, block in components.items():
        if not block.get("factory", "").startswith("seqlab_") or "model" not in block:
            continue
        model = block["model"].get("backbone", block["model"])
        prefix = f"components.{name}.model" + (".backbone" if "backbone" in block["model"] else "")
        encoder = block["factory"] == "seqlab_multitask_ner"
        overrides[f"{prefix}.name"] = str(tiny_model_dir("bert" if encoder else "llama"))
        unmask = model.get("unmask", "none")
        if set(unmask) <= {"0", "1"} and len(unmask) > 2:  # groups the tiny model's 2 layers cannot take
            overrides[f"{prefix}.unmask"] = "01"
        if model.get("load_in_4bit"):
            overrides[f"{prefix}.load_in_4bit"] = False
        if block.get("max_prompt_tokens", 0) > 512:  # the tiny model's positions
            overrides[f"components.{name}.max_prompt_tokens"] = 512
    return overrides


@pytest.mark.parametrize("path", SHIPPED, ids=_id)
def test_debug_data_runs_and_leaves_the_frozen_pipes_unchanged(path, tiny_model_dir, tmp_path, monkeypatch, capsys):
    paths = _wnut16_docbins(tmp_path, 24, 8)
    frozen = load_config(path, interpolate=False)["training"]["frozen_components"]
    seen = {}
    load_model_from_config = spacy.util.load_model_from_config

    def loading_and_recording(*args, **kwargs):
        nlp = load_model_from_config(*args, **kwargs)
        seen["nlp"] = nlp
        seen["before"] = {name: nlp.get_pipe(name).to_bytes(exclude=["vocab"]) for name in frozen}
        return nlp

    monkeypatch.setattr(spacy.util, "load_model_from_config", loading_and_recording)
    overrides = {"paths.train": str(paths["train"]), "paths.dev": str(paths["dev"])}
    overrides.update(_tiny_model_overrides(path, tiny_model_dir))
    with pytest.raises(SystemExit):  # spaCy's own data checks: fewer than 2,000 docs is an error
        debug_data(path, config_overrides=overrides, silent=False)
    output = capsys.readouterr().out
    assert "Pipeline can be initialized with data" in output and "Corpus is loadable" in output
    nlp = seen["nlp"]
    assert nlp.disabled == []
    for name in frozen:
        assert nlp.get_pipe(name).to_bytes(exclude=["vocab"]) == seen["before"][name], name
    if "oie" in nlp.pipe_names:
        # The tagger learned its OIE signal from relations found on the intact upstream annotations.
        assert "B-REL" in nlp.get_pipe("seqlab_ner").model.attrs["signal_values"]["oie"]
