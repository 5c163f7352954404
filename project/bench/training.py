"""4: one LoRA training step of the bidir tagger (``nlp.update``) against a hand-written peft + torch step."""

from typing import Any, Dict

from corpus import Corpus, train_examples
from measure import Bench, System
from seqlab_access import resolve_model_name
from systems import load_tokenizer, seqlab_nlp


def training_phase(bench: Bench, corpus: Corpus, settings: Dict[str, Any]) -> None:
    import numpy
    import torch
    from peft import LoraConfig, get_peft_model
    from spacy.tokens import Doc
    from spacy.training import Example
    from thinc.api import Adam
    from transformers import AutoModel

    args, size, steps = bench.args, settings["train_batch"], settings["train_steps"]
    decoder = resolve_model_name(args.decoder)
    lora = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": ["q_proj", "v_proj"]}
    lr, dropout = 5e-4, 0.1

    # The bidir tagger as spacy train runs it: nlp.update on a batch of Examples, thinc Adam (the CPU config's).
    nlp = seqlab_nlp(
        "seqlab_bidir_tagger", {"name": decoder, "unmask": "none", "lora": lora}, corpus, model={"dropout": dropout}
    )
    optimizer = Adam(learn_rate=lr, L2=0.0, grad_clip=1.0, use_averages=False, L2_is_weight_decay=True)
    gold = train_examples(nlp, corpus)[:size]
    n_words = sum(len(eg.reference) for eg in gold)
    texts = [eg.reference.text for eg in gold]
    words = [([t.text for t in eg.reference], [bool(t.whitespace_) for t in eg.reference]) for eg in gold]
    n_tags = len(nlp.get_pipe("seqlab_bidir_tagger").labels) * 2 + 1

    def tagger_step(_: Any) -> None:
        for _ in range(steps):
            examples = [Example(Doc(nlp.vocab, words=w, spaces=sp), eg.reference) for (w, sp), eg in zip(words, gold)]
            nlp.update(examples, drop=dropout, sgd=optimizer, losses={})

    # The same by hand: peft LoRA on the same trunk, a linear head on each word's first piece, AdamW.
    torch.manual_seed(0)
    tokenizer = load_tokenizer(decoder)
    base = AutoModel.from_pretrained(decoder, torch_dtype=torch.float32)
    model = get_peft_model(
        base,
        LoraConfig(
            r=lora["r"],
            lora_alpha=lora["alpha"],
            lora_dropout=lora["dropout"],
            target_modules=lora["target_modules"],
            bias="none",
        ),
    )
    head = torch.nn.Linear(base.config.hidden_size, n_tags)
    head_dropout = torch.nn.Dropout(dropout)
    params = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    torch_optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    rng = numpy.random.default_rng(0)

    def handwritten_step(_: Any) -> None:
        model.train()
        for _ in range(steps):
            enc = tokenizer(texts, padding=True, return_tensors="pt")
            width = enc["input_ids"].shape[1]
            positions = []
            for row in range(len(texts)):
                ids = enc.word_ids(row)
                positions += [
                    row * width + i for i, w in enumerate(ids) if w is not None and (i == 0 or ids[i - 1] != w)
                ]
            labels = torch.from_numpy(rng.integers(0, n_tags, len(positions)))
            hidden = model(
                input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False
            ).last_hidden_state
            logits = head(head_dropout(hidden.reshape(-1, hidden.shape[-1]).index_select(0, torch.tensor(positions))))
            loss = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
            torch_optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            torch_optimizer.step()

    extra = {"batch_size": size, "steps_per_pass": steps, "lora": lora}
    ours = System(
        "train_step_bidir_tagger",
        "bidir tagger training step (nlp.update)",
        tagger_step,
        n_words * steps,
        group="training",
        extra=extra,
    )
    theirs = System(
        "train_step_peft_torch",
        "hand-written peft + torch step",
        handwritten_step,
        n_words * steps,
        group="training",
        extra=extra,
    )
    bench.compare([ours, theirs])
    bench.measure(
        "4",
        "bidir tagger LoRA training step vs hand-written peft + torch step (time)",
        ours.wall / theirs.wall,
        "<=",
        1.1,
        f"{steps} step(s) on the same {size} tweets; LoRA r {lora['r']} alpha {lora['alpha']} on q/v, "
        f"{n_tags}-way head, dropout 0.1; thinc Adam (grad clip 1.0) vs torch AdamW + clip_grad_norm_(1.0)",
        systems=[ours.name, theirs.name],
        ratio_cpu=ours.cpu / theirs.cpu,
    )
