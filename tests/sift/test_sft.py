import json
import logging
import subprocess
import sys

import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example

from spacy_seqlab.hf.generation import MIN_SHARED_TOKENS, generate, shared_prefix_length
from spacy_seqlab.sift.constraints import LineConstraint
from spacy_seqlab.sift.prompt import build_prompt, instruction_text, loss_mask
from spacy_seqlab.sift.response import NO_SPANS, format_response, parse_response

SENTENCES = [
    (["Alice", "lives", "in", "Paris", "."], [(0, 1, "PER"), (3, 4, "LOC")]),
    (["Bob", "met", "Alice", "in", "Berlin", "."], [(0, 1, "PER"), (2, 3, "PER"), (4, 5, "LOC")]),
    (["The", "dog", "sleeps", "."], []),
    (["Paris", "is", "not", "Berlin", "."], [(0, 1, "LOC"), (3, 4, "LOC")]),
]


def _gold_docs(vocab):
    docs = []
    for words, spans in SENTENCES:
        doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 2) + [False, False])
        doc.set_ents(
            [doc.char_span(doc[s].idx, doc[e - 1].idx + len(doc[e - 1]), label=lab) for s, e, lab in spans],
            default="outside",
        )
        docs.append(doc)
    return docs


def _examples(nlp):
    return [Example(nlp.make_doc(doc.text), doc) for doc in _gold_docs(nlp.vocab)]


def _sft_nlp(model_dir, **config):
    nlp = spacy.blank("en")
    settings = {
        "model": {"name": str(model_dir), "lora": None},
        "n_demos": 1,
        "selector": "random",
        "max_new_tokens": 24,
        **config,
    }
    nlp.add_pipe("seqlab_llm_sft", config=settings)
    return nlp


# -- loss masks ---------------------------------------------------------------------------


def _runs(ids, mask):
    """The contiguous runs of masked token ids."""
    runs, current = [], []
    for token_id, keep in zip(ids, mask):
        if keep:
            current.append(token_id)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


@pytest.mark.parametrize("with_instruction", [True, False])
def test_loss_masks_cover_exactly_what_each_strategy_says(tokenizers_by_style, with_instruction):
    tokenizer = tokenizers_by_style["bytelevel"]
    eos = tokenizer.eos_token
    demos = [("Alice lives in Paris .", "Alice | PER\nParis | LOC"), ("The dog sleeps .", NO_SPANS)]
    instruction = instruction_text(["PER", "LOC"], {"PER": "a person"}) if with_instruction else None
    prompt = build_prompt(
        "Bob met Alice .", demos, instruction=instruction, eos=eos, query_response="Bob | PER\nAlice | PER"
    )
    encoded = tokenizer(prompt.text, add_special_tokens=True, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    decode = lambda run: tokenizer.decode(run)  # noqa: E731

    vanilla = loss_mask(prompt, offsets, "vanilla")
    assert not vanilla[0]  # BOS is never a target
    assert [decode(r) for r in _runs(ids, vanilla)] == [prompt.text]
    assert ("Find the spans" in prompt.text) == with_instruction

    src = loss_mask(prompt, offsets, "src")
    assert [decode(r) for r in _runs(ids, src)] == [f"Bob | PER\nAlice | PER{eos}"]

    mrc = loss_mask(prompt, offsets, "mrc")
    assert [decode(r) for r in _runs(ids, mrc)] == [
        f"Alice | PER\nParis | LOC{eos}",
        f"{NO_SPANS}{eos}",
        f"Bob | PER\nAlice | PER{eos}",
    ]
    with pytest.raises(ValueError, match="strategy"):
        loss_mask(prompt, offsets, "all")


def test_training_prompts_never_show_the_query_as_its_own_demonstration(tiny_model_dir):
    nlp = _sft_nlp(tiny_model_dir("llama"), n_demos=3, selector="similar")
    examples = _examples(nlp)
    nlp.initialize(lambda: examples)
    pipe = nlp.get_pipe("seqlab_llm_sft")
    for eg, prompt in zip(examples, pipe.training_prompts(examples)):
        query = f"Text: {eg.reference.text}\n"
        # The query appears once, as the last text: never among the demonstrations.
        assert prompt.text.count(query) == 1 and prompt.text.rindex("Text: ") == prompt.text.index(query)
        assert prompt.text.count("Text: ") == 4  # three demonstrations, then the query


# -- training and generation ----------------------------------------------------------------


def _train(nlp, examples, steps, optimizer, learn_rate=0.01):
    optimizer.learn_rate = learn_rate
    losses = []
    for _ in range(steps):
        step = {}
        nlp.update(examples, sgd=optimizer, losses=step)
        losses.append(step["seqlab_llm_sft"])
    return losses


@pytest.fixture(scope="module")
def trained_sft(tiny_model_dir):
    """A tiny random causal LM overfitted on the four sentences with MRC."""
    nlp = _sft_nlp(tiny_model_dir("llama"), strategy="mrc")
    examples = _examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    before = nlp.evaluate(examples)["seqeval_f"]
    losses = _train(nlp, examples, 150, optimizer)
    return nlp, examples, before, losses


def test_mrc_overfits_and_generates_the_responses(trained_sft):
    nlp, examples, before, losses = trained_sft
    assert losses[-1] < losses[0] / 10
    after = nlp.evaluate(examples)["seqeval_f"]
    assert before < 0.2 and after > 0.9, (before, after)


def test_batched_generation_equals_one_at_a_time(trained_sft):
    nlp, examples, _, _ = trained_sft
    pipe = nlp.get_pipe("seqlab_llm_sft")
    prompts = [
        pipe.prompter.prompt(t).generation_prefix
        for t in ["Alice lives in Paris .", "Bob met Alice in Berlin and then went home to Paris .", "x"]
    ]
    assert len({len(p) for p in prompts}) == 3
    module = pipe.module
    together = generate(module.transformer, module.tokenizer, prompts, max_new_tokens=16)
    alone = [generate(module.transformer, module.tokenizer, [p], max_new_tokens=16)[0] for p in prompts]
    assert together == alone


def test_shared_prompt_start_is_run_once_and_changes_no_continuation(trained_sft):
    nlp, _, _, _ = trained_sft
    pipe = nlp.get_pipe("seqlab_llm_sft")
    module = pipe.module
    texts = [
        "Alice lives in Paris .",
        "Bob met Alice in Berlin and then went home to Paris .",
        "x",
        "Paris is not Berlin .",
    ]
    prompts = [pipe.prompter.prompt(t).generation_prefix for t in texts]
    encoded = module.tokenizer(prompts)["input_ids"]
    shared = shared_prefix_length(encoded)
    assert shared >= MIN_SHARED_TOKENS  # the instruction at least
    assert all(ids[:shared] == encoded[0][:shared] for ids in encoded) and len({ids[shared] for ids in encoded}) > 1
    widths = []
    base = module.transformer.get_base_model() if hasattr(module.transformer, "get_base_model") else module.transformer
    hook = base.register_forward_hook(
        lambda mod, args, kwargs, out: widths.append(tuple(kwargs["input_ids"].shape)), with_kwargs=True
    )
    try:
        together = generate(module.transformer, module.tokenizer, prompts, max_new_tokens=16)
        first_calls = list(widths)
        plain = generate(module.transformer, module.tokenizer, prompts, max_new_tokens=16, share_prefix=False)
    finally:
        hook.remove()
    assert together == plain
    longest = max(len(ids) for ids in encoded)
    assert first_calls[0] == (1, shared)  # the shared start, once
    assert first_calls[1] == (len(texts), longest - shared)  # then only each prompt's rest
    assert widths[len(first_calls)] == (len(texts), longest)


def test_constrained_decoding_only_writes_spans_of_the_input(trained_sft, tiny_model_dir):
    nlp, _, _, _ = trained_sft
    pipe = nlp.get_pipe("seqlab_llm_sft")
    doc = nlp.make_doc("Berlin and Paris and Alice")
    constraint = LineConstraint(doc, pipe.labels, pipe.module.tokenizer)
    (response,) = generate(
        pipe.module.transformer,
        pipe.module.tokenizer,
        [pipe.prompter.prompt(doc.text).generation_prefix],
        max_new_tokens=32,
        constraints=[constraint],
    )
    parsed = parse_response(doc, response, pipe.labels)
    assert parsed.dropped == 0 and not parsed.garbage, response
    # An untrained model, constrained, still writes only well-formed lines.
    fresh = _sft_nlp(tiny_model_dir("llama"), constrained=True)
    fresh.initialize(lambda: _examples(fresh))
    raw = fresh.get_pipe("seqlab_llm_sft")
    for text in ["Alice lives in Paris .", "Paris Paris Paris", "!!!"]:
        target = fresh.make_doc(text)
        (out,) = generate(
            raw.module.transformer,
            raw.module.tokenizer,
            [raw.prompter.prompt(text).generation_prefix],
            max_new_tokens=64,
            constraints=[LineConstraint(target, raw.labels, raw.module.tokenizer)],
        )
        result = parse_response(target, out, raw.labels)
        assert result.dropped == 0, out


def test_garbage_responses_give_no_spans_and_a_warning(trained_sft, caplog):
    nlp, _, _, _ = trained_sft
    pipe = nlp.get_pipe("seqlab_llm_sft")
    doc = nlp.make_doc("Alice lives in Paris .")
    with caplog.at_level(logging.WARNING, logger="spacy_seqlab"):
        assert pipe.read_responses(doc, ['I think the answer is probably Paris, but who knows {"a": 1}']) == []
    assert "unparsable" in caplog.text
    assert pipe.read_responses(doc, ["Paris | loc\nNowhere | LOC\nAlice | PER"]) == [(3, 4, "LOC")]


def test_long_docs_are_read_in_windows_with_each_span_once(trained_sft):
    nlp, _, _, _ = trained_sft
    pipe = nlp.get_pipe("seqlab_llm_sft")
    gold_doc = _gold_docs(nlp.vocab)[1]  # "Bob met Alice in Berlin." with three spans
    doc = Doc.from_docs([gold_doc] * 40)  # 240 tokens, windows of 64 every 48
    windows = pipe.prompter.windows(doc)
    assert len(windows) == 5 and windows[-1][1] == len(doc)
    # A perfect model answers each window with its gold spans; overlaps must not duplicate them.
    responses = []
    for s, e in windows:
        window = doc[s:e].as_doc()
        responses.append(format_response(window, [ent for ent in window.ents]))
    spans = pipe.read_responses(doc, responses)
    assert spans == [(e.start, e.end, e.label_) for e in doc.ents]


def test_pipe_handles_long_empty_and_whitespace_docs(trained_sft):
    nlp, _, _, _ = trained_sft
    texts = [" ".join(["Alice lives in Paris."] * 40), "", "   ", "Alice lives in Paris."]
    docs = list(nlp.pipe(texts, batch_size=2))
    assert all(e.label_ in ("PER", "LOC") for doc in docs for e in doc.ents)
    assert len(docs[1].ents) == 0 and len(docs[2].ents) == 0
    assert [(e.text, e.label_) for e in docs[3].ents] == [("Alice", "PER"), ("Paris", "LOC")]


def test_disk_round_trip_and_spacy_llm_route_give_the_same_spans(trained_sft, tmp_path):
    nlp, _, _, _ = trained_sft
    texts = ["Alice lives in Paris.", "Bob met Alice in Berlin.", "The dog sleeps.", "Paris is Berlin", ""]
    expected = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts)]
    nlp.to_disk(tmp_path / "sft")
    loaded = spacy.load(tmp_path / "sft")
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in loaded.pipe(texts)] == expected

    llm_nlp = spacy.blank("en")
    llm_nlp.add_pipe(
        "llm",
        config={
            "task": {"@llm_tasks": "spacy_seqlab.SiftTask.v1", "pipeline": str(tmp_path / "sft")},
            "model": {"@llm_models": "spacy_seqlab.SiftModel.v1", "pipeline": str(tmp_path / "sft")},
        },
    )
    assert [[(e.start, e.end, e.label_) for e in d.ents] for d in llm_nlp.pipe(texts)] == expected


def test_bad_settings_are_named(tiny_model_dir):
    for config, message in [
        ({"strategy": "all"}, "strategy"),
        ({"selector": "knn"}, "selector"),
        ({"target": "tag"}, "target"),
        ({"n_demos": -1}, "n_demos"),
        # spacy_seqlab.CausalLM.v1 is always a causal LM that keeps its causal mask: it has neither setting.
        ({"model": {"name": str(tiny_model_dir("llama")), "model_class": "base"}}, "model_class"),
        ({"model": {"name": str(tiny_model_dir("llama")), "unmask": "all"}}, "unmask"),
        (
            {"model": {"@architectures": "spacy_seqlab.HFBackbone.v1", "name": str(tiny_model_dir("llama"))}},
            "causal LM",
        ),
    ]:
        with pytest.raises(Exception, match=message):
            _sft_nlp(tiny_model_dir("llama"), **config)


def test_spacy_package_round_trip(trained_sft, tmp_path):
    nlp, _, _, _ = trained_sft
    texts = ["Alice lives in Paris.", "Bob met Alice in Berlin.", "The dog sleeps."]
    expected = [[[e.start, e.end, e.label_] for e in d.ents] for d in nlp.pipe(texts)]
    assert any(expected)
    nlp.to_disk(tmp_path / "sft")
    (tmp_path / "pkg").mkdir()

    def run(args, **kwargs):
        result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900, **kwargs)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
        return result

    run(
        [
            "-m",
            "spacy",
            "package",
            str(tmp_path / "sft"),
            str(tmp_path / "pkg"),
            "--name",
            "sft_test",
            "--version",
            "0.0.1",
            "--build",
            "wheel",
        ]
    )
    run(
        [
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(tmp_path / "site"),
            str(next((tmp_path / "pkg").glob("**/dist/*.whl"))),
        ]
    )
    script = (
        "import json, spacy; nlp = spacy.load('en_sft_test'); "
        f"print(json.dumps([[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe({texts!r})]))"
    )
    env = {
        "PYTHONPATH": str(tmp_path / "site"),
        "HF_HUB_OFFLINE": "1",
        "PATH": "/usr/bin:/bin",
        "OMP_WAIT_POLICY": "PASSIVE",
    }
    out = run(["-c", script], env=env)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
