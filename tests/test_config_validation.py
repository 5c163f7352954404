"""Every setting of every factory is validated at construction or at initialize, with an error
that names the setting and the allowed values.

``CASES`` holds one or more invalid values per setting; ``test_every_setting_has_a_case`` checks
that no setting of any factory (its own, the backbone's, LoRA's, a signal's) is left out.
"""

import copy
import inspect
import json
import re
import shutil
from dataclasses import fields

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_seqlab.hf.backbone import build_hf_backbone
from spacy_seqlab.hf.causal_lm import CausalLMSettings, build_causal_lm
from spacy_seqlab.hf.loading import ModelLoadError
from spacy_seqlab.hf.lora import LoraSettings
from spacy_seqlab.hf.model import ModelSettings
from spacy_seqlab.hf.pooling import PoolingSettings
from spacy_seqlab.hf.windows import WindowSettings
from spacy_seqlab.sift.pipe import SiftSettings
from spacy_seqlab.tagging.model import TaggerSettings, build_tagger
from spacy_seqlab.tagging.pipe import TargetSettings
from spacy_seqlab.tagging.signals import SignalSettings

BIDIR, MULTI, SFT, OIE = "seqlab_bidir_tagger", "seqlab_multitask_ner", "seqlab_llm_sft", "seqlab_oie"
ARCH = {BIDIR: "llama", MULTI: "bert", SFT: "llama"}
ARCHITECTURES = {BIDIR: build_tagger, MULTI: build_tagger}

CONSTRUCT, INITIALIZE = "construct", "initialize"

# (factory, setting, config override, stage, pattern naming the setting, pattern of the allowed values).
# A backbone override is given as {"backbone": {...}} and goes where the factory keeps its backbone.
CASES = [
    # -- the model settings of spacy_seqlab.HFBackbone.v1 (the taggers) and spacy_seqlab.CausalLM.v1 (SFT) --
    (BIDIR, "name", {"backbone": {"name": ""}}, CONSTRUCT, r"\bname\b", r"hub name, a local folder or a pypi: alias"),
    (
        SFT,
        "name",
        {"backbone": {"name": "/no/such/model/dir"}},
        INITIALIZE,
        r"name = '/no/such/model/dir'",
        r"local folder, a hub name, or a pypi: alias",
    ),
    (SFT, "revision", {"backbone": {"revision": 5}}, CONSTRUCT, r"revision", r"str"),
    (BIDIR, "gguf_file", {"backbone": {"gguf_file": "model.bin"}}, CONSTRUCT, r"gguf_file", r"\.gguf file .*or null"),
    (
        SFT,
        "gguf_file",
        {"backbone": {"gguf_file": "missing.gguf"}},
        INITIALIZE,
        r"gguf_file = 'missing.gguf'",
        r"name a \.gguf file there, or set gguf_file = null",
    ),
    # model_class is fixed by the architecture (HFBackbone: base; CausalLM: causal-lm): no longer a setting.
    (
        BIDIR,
        "model_class",
        {"backbone": {"model_class": "seq2seq"}},
        CONSTRUCT,
        r"model_class",
        r"extra fields not permitted|unexpected argument",
    ),
    (
        SFT,
        "model_class",
        {"backbone": {"model_class": "base"}},
        CONSTRUCT,
        r"model_class",
        r"extra fields not permitted|unexpected argument",
    ),
    (BIDIR, "dtype", {"backbone": {"dtype": "int8"}}, CONSTRUCT, r"dtype", r"float32, bfloat16, float16, auto"),
    (
        BIDIR,
        "attn_implementation",
        {"backbone": {"attn_implementation": "eager", "unmask": "01"}},
        CONSTRUCT,
        r"attn_implementation",
        r"null or 'sdpa'",
    ),
    (
        SFT,
        "attn_implementation",
        {"backbone": {"attn_implementation": "turbo"}},
        INITIALIZE,
        r"attn_implementation",
        r"eager",
    ),
    (BIDIR, "unmask", {"backbone": {"unmask": "0x1"}}, CONSTRUCT, r"unmask", r"'none', 'all', a bit string"),
    (BIDIR, "unmask", {"backbone": {"unmask": "000"}}, INITIALIZE, r"unmask = '000'", r"group count among \[1, 2\]"),
    (BIDIR, "unmask", {"backbone": {"unmask": [0, 7]}}, INITIALIZE, r"unmask layer indices \[7\]", r"0\.\.1"),
    (MULTI, "unmask", {"backbone": {"unmask": "01"}}, INITIALIZE, r"unmask = '01'", r"use 'none'"),
    (
        SFT,
        "unmask",
        {"backbone": {"unmask": "all"}},
        CONSTRUCT,
        r"unmask",
        r"extra fields not permitted|unexpected argument",
    ),  # CausalLM keeps the causal mask
    (
        SFT,
        "freeze",
        {"backbone": {"freeze": True}},
        CONSTRUCT,
        r"freeze",
        r"extra fields not permitted|unexpected argument",
    ),
    (BIDIR, "lora", {"backbone": {"lora": "yes"}}, CONSTRUCT, r"lora", r"Dict"),
    (
        BIDIR,
        "lora",
        {"backbone": {"lora": {"rank": 4}}},
        CONSTRUCT,
        r"lora setting\(s\) \['rank'\]",
        r"allowed are \['alpha', 'bias', 'dropout', 'r', 'target_modules'\]",
    ),
    (BIDIR, "r", {"backbone": {"lora": {"r": 0}}}, CONSTRUCT, r"lora\.r", r"positive integer"),
    (SFT, "r", {"backbone": {"lora": {"r": True}}}, CONSTRUCT, r"lora\.r", r"positive integer"),
    (BIDIR, "alpha", {"backbone": {"lora": {"alpha": 0}}}, CONSTRUCT, r"lora\.alpha", r"positive number"),
    (BIDIR, "dropout", {"backbone": {"lora": {"dropout": 1.0}}}, CONSTRUCT, r"lora\.dropout", r"\[0, 1\)"),
    (
        BIDIR,
        "bias",
        {"backbone": {"lora": {"bias": "some"}}},
        CONSTRUCT,
        r"lora\.bias",
        r"'none', 'all' or 'lora_only'",
    ),
    (
        BIDIR,
        "target_modules",
        {"backbone": {"lora": {"target_modules": "qv"}}},
        CONSTRUCT,
        r"lora\.target_modules",
        r"'auto' or 'all-linear'",
    ),
    (
        SFT,
        "target_modules",
        {"backbone": {"lora": {"target_modules": ["nope"]}}},
        INITIALIZE,
        r"lora\.target_modules \['nope'\]",
        r"q_proj",
    ),
    (BIDIR, "freeze", {"backbone": {"freeze": "maybe"}}, CONSTRUCT, r"freeze", r"bool"),
    (
        BIDIR,
        "freeze",
        {"backbone": {"freeze": True, "lora": {"r": 2}}},
        CONSTRUCT,
        r"freeze = true with lora",
        r"set one of them",
    ),
    (
        BIDIR,
        "load_in_4bit",
        {"backbone": {"load_in_4bit": True, "lora": None}},
        CONSTRUCT,
        r"load_in_4bit",
        r"needs lora",
    ),
    (
        SFT,
        "load_in_4bit",
        {"backbone": {"load_in_4bit": True, "lora": {"r": 2}, "save_base": False}},
        INITIALIZE,
        r"load_in_4bit",
        r"CUDA GPU.*set load_in_4bit = false",
    ),
    (BIDIR, "pooling", {"backbone": {"pooling": "max"}}, CONSTRUCT, r"pooling", r"first, last, mean"),
    (BIDIR, "window", {"backbone": {"window": 0}}, CONSTRUCT, r"window", r"positive"),
    (MULTI, "window", {"backbone": {"window": "big"}}, CONSTRUCT, r"window", r"int"),
    (BIDIR, "window", {"backbone": {"window": 100_000}}, INITIALIZE, r"window = 100000", r"set window <= 511"),
    (
        SFT,
        "pooling",
        {"backbone": {"pooling": "last", "window": 128}},
        CONSTRUCT,
        r"pooling|window",
        r"extra fields not permitted|unexpected argument",
    ),
    (BIDIR, "stride", {"backbone": {"stride": 0}}, CONSTRUCT, r"stride", r"between 1 and window"),
    (
        BIDIR,
        "max_batch_tokens",
        {"backbone": {"max_batch_tokens": 0}},
        CONSTRUCT,
        r"max_batch_tokens",
        r"positive integer",
    ),
    (
        SFT,
        "max_batch_tokens",
        {"backbone": {"max_batch_tokens": 0}},
        CONSTRUCT,
        r"max_batch_tokens",
        r"positive integer",
    ),
    (BIDIR, "max_padding", {"backbone": {"max_padding": 1.5}}, CONSTRUCT, r"max_padding", r"between 0.0 and 1.0"),
    (BIDIR, "repeat", {"backbone": {"repeat": -1}}, CONSTRUCT, r"repeat", r"non-negative integer"),
    (MULTI, "repeat", {"backbone": {"repeat": 1}}, INITIALIZE, r"repeat = 1 on 'bert'", r"decoder-only.*repeat = 0"),
    (BIDIR, "exit_layer", {"backbone": {"exit_layer": 0}}, CONSTRUCT, r"exit_layer", r"1 = the first.*-1 = the last"),
    (BIDIR, "exit_layer", {"backbone": {"exit_layer": 5}}, INITIALIZE, r"exit_layer = 5", r"1\.\.2 or -2\.\.-1"),
    (BIDIR, "save_base", {"backbone": {"save_base": "sometimes"}}, CONSTRUCT, r"save_base", r"bool"),
    (
        SFT,
        "save_base",
        {"backbone": {"load_in_4bit": True, "lora": {"r": 2}, "save_base": True}},
        CONSTRUCT,
        r"load_in_4bit.*save_base",
        r"save_base = false or null",
    ),
    (
        BIDIR,
        "gradient_checkpointing",
        {"backbone": {"gradient_checkpointing": "x"}},
        CONSTRUCT,
        r"gradient_checkpointing",
        r"bool",
    ),
    (
        BIDIR,
        "windw",
        {"backbone": {"windw": 128}},
        CONSTRUCT,
        r"windw",
        r"extra fields not permitted|unexpected argument",
    ),
    # -- the taggers --
    (BIDIR, "target", {"target": "entities"}, CONSTRUCT, r"target", r"ents, spans:KEY, tag, pos"),
    (MULTI, "target", {"target": "spans:"}, CONSTRUCT, r"target", r"ents, spans:KEY, tag, pos"),
    (BIDIR, "scheme", {"scheme": "bio"}, CONSTRUCT, r"scheme", r"iob2, bioes, tags"),
    (MULTI, "scheme", {"target": "ents", "scheme": "tags"}, CONSTRUCT, r"scheme", r"iob2, bioes"),
    (BIDIR, "scheme", {"target": "pos", "scheme": "iob2"}, CONSTRUCT, r"scheme", r"'tags'"),
    (BIDIR, "repair", {"repair": "fix"}, CONSTRUCT, r"repair", r"strict, lenient"),
    (MULTI, "scorer", {"scorer": "seqeval"}, CONSTRUCT, r"scorer", r"Callable"),
    (BIDIR, "dropout", {"model": {"dropout": 1.0}}, CONSTRUCT, r"dropout", r"\[0, 1\)"),
    (MULTI, "dropout", {"model": {"dropout": -0.1}}, CONSTRUCT, r"dropout", r"\[0, 1\)"),
    (BIDIR, "decoder", {"model": {"decoder": "beam"}}, CONSTRUCT, r"decoder", r"viterbi, crf, argmax"),
    (
        BIDIR,
        "head_learn_rate_factor",
        {"model": {"head_learn_rate_factor": 0}},
        CONSTRUCT,
        r"head_learn_rate_factor",
        r"positive",
    ),
    (
        MULTI,
        "head_learn_rate_factor",
        {"model": {"head_learn_rate_factor": "fast"}},
        CONSTRUCT,
        r"head_learn_rate_factor",
        r"float",
    ),
    (MULTI, "head_init", {"model": {"head_init": "random"}}, CONSTRUCT, r"head_init", r"prior, zero"),
    (BIDIR, "nO", {"model": {"nO": 7}}, INITIALIZE, r"model\.nO = 7", r"leave nO unset"),
    (
        BIDIR,
        "labels",
        {"target": "pos", "labels": ["NOUN", "NN"]},
        INITIALIZE,
        r"target pos: its labels",
        r"Universal POS tags \(ADJ, .*VERB, X\); not UPOS: \['NN'\]",
    ),
    (MULTI, "labels", {"labels": ["PER", "O"]}, INITIALIZE, r"span label 'O'", r"non-empty and not 'O'"),
    # -- signals of the taggers --
    (MULTI, "signals", {"model": {"signals": {"pos": "POS"}}}, CONSTRUCT, r"signals", r"Dict"),
    (
        MULTI,
        "source",
        {"model": {"signals": {"pos": {"source": "FOO"}}}},
        CONSTRUCT,
        r"signal source 'FOO'",
        r"MORPH:Field, spans:KEY\. Lexical attributes: .*IS_TITLE.*SHAPE.*; set by upstream pipes: POS, TAG, DEP",
    ),
    (
        MULTI,
        "source",
        {"model": {"signals": {"pos": {"mode": "head"}}}},
        CONSTRUCT,
        r"needs a source",
        r"a spaCy token attribute \(e\.g\. SHAPE, IS_TITLE",
    ),
    (
        MULTI,
        "source",
        {"model": {"signals": {"rel": {"source": "spans:nowhere"}}}},
        INITIALIZE,
        r"signal 'spans:nowhere'",
        r"add a component that sets doc\.spans\['nowhere'\]",
    ),
    (
        MULTI,
        "mode",
        {"model": {"signals": {"pos": {"source": "POS", "mode": "implicit"}}}},
        CONSTRUCT,
        r"mode",
        r"embed, head, both",
    ),
    (
        MULTI,
        "width",
        {"model": {"signals": {"pos": {"source": "POS", "width": 0}}}},
        CONSTRUCT,
        r"width",
        r"positive integer",
    ),
    (
        MULTI,
        "width",
        {"model": {"signals": {"pos": {"source": "POS", "width": True}}}},
        CONSTRUCT,
        r"width",
        r"positive integer",
    ),
    (
        MULTI,
        "learn_rate_factor",
        {"model": {"signals": {"pos": {"source": "POS", "learn_rate_factor": 0}}}},
        CONSTRUCT,
        r"learn_rate_factor",
        r"positive number",
    ),
    (
        MULTI,
        "loss_weight",
        {"model": {"signals": {"pos": {"source": "POS", "loss_weight": -1.0}}}},
        CONSTRUCT,
        r"loss_weight",
        r"zero or a positive number",
    ),
    (
        MULTI,
        "size",
        {"model": {"signals": {"pos": {"source": "POS", "size": 3}}}},
        CONSTRUCT,
        r"setting\(s\) \['size'\]",
        r"allowed are \['learn_rate_factor', 'loss_weight', 'mode', 'source', 'width'\]",
    ),
    # -- seqlab_llm_sft --
    (SFT, "target", {"target": "tag"}, CONSTRUCT, r"target", r"'ents' or 'spans:KEY'"),
    (SFT, "strategy", {"strategy": "all"}, CONSTRUCT, r"strategy", r"vanilla, src, mrc"),
    (SFT, "instruction", {"instruction": "maybe"}, CONSTRUCT, r"instruction", r"bool"),
    (SFT, "label_definitions", {"label_definitions": {"PER": 5}}, CONSTRUCT, r"label_definitions", r"str"),
    (
        SFT,
        "label_definitions",
        {"label_definitions": {"ORG": "an organisation"}},
        INITIALIZE,
        r"label_definitions has definitions for \['ORG'\]",
        r"its labels are \['LOC', 'PER'\]",
    ),
    (
        SFT,
        "label_definitions",
        {"label_definitions": {"PER": "a person"}, "instruction": False},
        CONSTRUCT,
        r"label_definitions",
        r"set instruction = true, or label_definitions = \{\}",
    ),
    (SFT, "n_demos", {"n_demos": -1}, CONSTRUCT, r"n_demos", r"non-negative integer"),
    (SFT, "n_demos", {"n_demos": 1.5}, CONSTRUCT, r"n_demos", r"int"),
    (SFT, "selector", {"selector": "knn"}, CONSTRUCT, r"selector", r"random, similar, dense"),
    (SFT, "max_prompt_tokens", {"max_prompt_tokens": 0}, CONSTRUCT, r"max_prompt_tokens", r"positive integer"),
    (SFT, "max_new_tokens", {"max_new_tokens": 0}, CONSTRUCT, r"max_new_tokens", r"positive integer"),
    (SFT, "constrained", {"constrained": "x"}, CONSTRUCT, r"constrained", r"bool"),
    (
        SFT,
        "constrained",
        {"constrained": True, "backbone_name": "llama-wordpiece"},
        INITIALIZE,
        r"constrained = true",
        r"line break as one token.*set constrained = false",
    ),
    (SFT, "max_span_tokens", {"max_span_tokens": 0}, CONSTRUCT, r"max_span_tokens", r"positive integer"),
    (SFT, "window", {"window": 0}, CONSTRUCT, r"window", r"positive"),
    (SFT, "stride", {"stride": 100}, CONSTRUCT, r"stride", r"between 1 and window \(64\)"),
    (SFT, "seed", {"seed": "x"}, CONSTRUCT, r"seed", r"int"),
    (SFT, "scorer", {"scorer": 3}, CONSTRUCT, r"scorer", r"Callable"),
    (
        SFT,
        "labels",
        {"labels": ["PER", "A | B"]},
        INITIALIZE,
        r"Labels \['A \| B'\]",
        r"no '\|', line breaks or edge spaces",
    ),
    # -- seqlab_oie --
    (OIE, "spans_key", {"spans_key": ""}, CONSTRUCT, r"spans_key", r"non-empty string"),
    (OIE, "max_relation_length", {"max_relation_length": 0}, CONSTRUCT, r"max_relation_length", r"integer >= 1"),
    (OIE, "max_relation_length", {"max_relation_length": 2.5}, CONSTRUCT, r"max_relation_length", r"int"),
    (OIE, "label", {"label": ""}, CONSTRUCT, r"label", r"non-empty string"),
    (OIE, "label", {"label": 5}, CONSTRUCT, r"label", r"str"),
]


def _deep_update(base, override):
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def _model_dir(tiny_model_dir, tmp_path_factory, factory, variant):
    if variant == "llama-wordpiece":  # a causal LM whose tokenizer has no line-break token
        from tiny_models import build_tokenizer

        folder = tmp_path_factory.mktemp("llama-wordpiece")
        shutil.copytree(tiny_model_dir("llama"), folder, dirs_exist_ok=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            (folder / name).unlink(missing_ok=True)
        tokenizer = build_tokenizer("wordpiece")
        tokenizer.add_special_tokens({"eos_token": "[SEP]"})
        tokenizer.save_pretrained(folder)
        return folder
    return tiny_model_dir(ARCH[factory]) if factory in ARCH else None


def _config(factory, override, model_dir):
    if factory == OIE:
        return copy.deepcopy(override)
    override = json.loads(json.dumps(override))
    override.pop("backbone_name", None)
    override.pop("labels", None)
    backbone = {"name": str(model_dir), "lora": None}
    if factory == BIDIR:
        backbone["unmask"] = "none"
    _deep_update(backbone, override.pop("backbone", {}))
    config = {"model": {"backbone": backbone} if factory != SFT else backbone}
    if factory != SFT:
        _deep_update(config["model"], override.pop("model", {}))
    return _deep_update(config, override)


def _examples(nlp):
    reference = Doc(
        nlp.vocab,
        words=["Alice", "lives", "in", "Paris"],
        ents=["B-PER", "O", "O", "B-LOC"],
        pos=["PROPN", "VERB", "ADP", "NOUN"],
    )
    predicted = Doc(nlp.vocab, words=["Alice", "lives", "in", "Paris"], pos=["PROPN", "VERB", "ADP", "NOUN"])
    return [Example(predicted, reference)]


@pytest.mark.parametrize(
    "factory,setting,override,stage,names,allowed", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_invalid_setting_is_named_with_its_allowed_values(
    tiny_model_dir, tmp_path_factory, factory, setting, override, stage, names, allowed
):
    model_dir = _model_dir(tiny_model_dir, tmp_path_factory, factory, override.get("backbone_name"))
    config = _config(factory, override, model_dir)
    nlp = spacy.blank("en")
    if stage == CONSTRUCT:
        with pytest.raises(ValueError) as caught:  # confection's ConfigValidationError is a ValueError too
            nlp.add_pipe(factory, config=config)
    else:
        nlp.add_pipe(factory, config=config)
        if "labels" in override:
            nlp.config["initialize"]["components"] = {factory: {"labels": override["labels"]}}
        with pytest.raises((ValueError, ModelLoadError)) as caught:  # ModelLoadError: weights or tokenizer not loadable
            nlp.initialize(lambda: _examples(nlp))
    message = str(caught.value)
    assert re.search(names, message), f"the message does not name {setting!r}: {message}"
    assert re.search(allowed, message, flags=re.S), f"the message does not give the allowed values: {message}"


def _settings(factory):
    """Every setting of a factory: its own, its backbone's, LoRA's and (taggers) a signal's."""
    own = set(spacy.Language.get_factory_meta(factory).default_config)
    own.discard("model")
    if factory == OIE:
        return own
    if factory == SFT:
        own |= set(inspect.signature(build_causal_lm).parameters) | {f.name for f in fields(CausalLMSettings)}
    else:
        own |= set(inspect.signature(build_hf_backbone).parameters)
        own |= {f.name for group in (ModelSettings, WindowSettings, PoolingSettings) for f in fields(group)}
    own |= {f.name for f in fields(LoraSettings)} | {"labels"}  # labels: [initialize.components]
    if factory != SFT:
        own |= set(inspect.signature(ARCHITECTURES[factory]).parameters) - {"backbone"}
    if factory in (BIDIR, MULTI):
        own |= {"signals"} | {f.name for f in fields(SignalSettings)}
        own |= {f.name for f in fields(TaggerSettings)} | {f.name for f in fields(TargetSettings)}
    if factory == SFT:
        assert {f.name for f in fields(SiftSettings)} <= own
    return own


@pytest.mark.parametrize("factory", [BIDIR, MULTI, SFT, OIE])
def test_every_setting_has_a_case(factory):
    shared = {BIDIR, MULTI}  # the two taggers share the tagger and backbone settings
    covered = {
        case[1]
        for case in CASES
        if case[0] == factory
        or (factory in shared and case[0] in shared)
        or (factory != OIE and case[0] in (BIDIR, SFT) and case[2].get("backbone"))
    }
    missing = _settings(factory) - covered
    assert not missing, f"{factory}: settings without an invalid-value case: {sorted(missing)}"


def test_constrained_is_accepted_with_a_sentencepiece_style_tokenizer(tiny_model_dir, tokenizers_by_style):
    """A SentencePiece-style tokenizer writes "\\n" alone as two pieces (a word-start marker, then
    the line break) but a line break after text as one: constrained decoding works with it."""
    metaspace = tokenizers_by_style["metaspace"]
    assert len(metaspace("\n", add_special_tokens=False)["input_ids"]) == 2
    nlp = spacy.blank("en")
    nlp.add_pipe(SFT, config=_config(SFT, {"constrained": True, "max_new_tokens": 12}, tiny_model_dir("mistral")))
    nlp.initialize(lambda: _examples(nlp))
    docs = list(nlp.pipe(["Alice lives in Paris", "Paris Paris", ""]))
    assert [doc.text for doc in docs] == ["Alice lives in Paris", "Paris Paris", ""]
    assert all(ent.label_ in ("LOC", "PER") for doc in docs for ent in doc.ents)
