"""Generation comparisons on SmolLM2 with ``seqlab_llm_sft``: 5a (batched against one prompt at a time),
5b (constrained against unconstrained decoding, per decoding step) and 1c (the component's ``nlp.pipe``
against ``generate`` alone on its prompts)."""

import statistics
import time
from typing import Any, Callable, Dict, List

import seqlab_access
from corpus import Corpus, make_docs, train_examples
from measure import Bench, System, own_cpu_seconds


class ForwardCounter:
    """Forward hooks on the model: how many calls a pass made, and how long the prefill calls (a forward over
    more than one new token) took; the rest of a pass is decoding steps and the work between them."""

    KEYS = ("n", "prefill_n", "prefill_wall", "prefill_cpu")

    def __init__(self, model: Any) -> None:
        self.calls: Dict[str, Any] = {}
        self.reset()
        self.hooks = [
            model.register_forward_pre_hook(self._before, with_kwargs=True),
            model.register_forward_hook(self._after, with_kwargs=True),
        ]

    def reset(self) -> None:
        self.calls.update(n=0, prefill_n=0, prefill_wall=0.0, prefill_cpu=0.0, start=(0.0, 0.0))

    def info(self) -> Dict[str, Any]:
        return {k: self.calls[k] for k in self.KEYS}

    def _before(self, module: Any, args: Any, kwargs: Dict[str, Any]) -> None:
        self.calls["start"] = (time.perf_counter(), own_cpu_seconds())

    def _after(self, module: Any, args: Any, kwargs: Dict[str, Any], output: Any) -> None:
        calls = self.calls
        calls["n"] += 1
        ids = kwargs.get("input_ids") if kwargs.get("input_ids") is not None else (args[0] if args else None)
        if ids is not None and ids.shape[-1] > 1:
            calls["prefill_n"] += 1
            calls["prefill_wall"] += time.perf_counter() - calls["start"][0]
            calls["prefill_cpu"] += own_cpu_seconds() - calls["start"][1]

    def remove(self) -> None:
        for hook in self.hooks:
            hook.remove()

    def counting(self, fn: Callable[[], List[str]]) -> Callable[[Any], Dict[str, Any]]:
        """``fn`` as a System's run: its texts, with the counts of its pass."""

        def run(_: Any) -> Dict[str, Any]:
            self.reset()
            texts = fn()
            return {"texts": texts, "forward_calls": self.calls["n"], "info": self.info()}

        return run


def decode_step(system: System, clock: str) -> float:
    """Median over kept passes of (pass time - prefill time) / decoding steps; ``clock``: "wall" or "cpu"."""
    return statistics.median(
        (getattr(p, clock) - p.info[f"prefill_{clock}"]) / max(1, p.info["n"] - p.info["prefill_n"])
        for p in system.kept
    )


def generation_phase(bench: Bench, corpus: Corpus, settings: Dict[str, Any]) -> None:
    import spacy

    decoder = seqlab_access.resolve_model_name(bench.args.decoder)
    max_new = settings["max_new_tokens"]
    nlp = spacy.blank("en")
    seqlab_access.add_sft(nlp, decoder, settings["n_demos"], max_new)
    nlp.initialize(lambda: train_examples(nlp, corpus))
    pipe = nlp.get_pipe("seqlab_llm_sft")
    parts = seqlab_access.sft_parts(pipe)
    tokenizer = parts.tokenizer
    sub = corpus.head(settings["gen_docs"])
    prompts, windows = seqlab_access.sft_prompts(pipe, make_docs(nlp, sub))
    counter = ForwardCounter(parts.base_model)

    def inspect(out: Dict[str, Any]) -> Dict[str, Any]:
        lengths = [len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in out["texts"]]
        return {
            "forward_calls": out["forward_calls"],
            "generated_tokens": sum(lengths),
            "max_generated_tokens": max(lengths),
        }

    def one_at_a_time() -> List[str]:
        return [seqlab_access.generate(parts, [p], max_new)[0] for p in prompts]

    def batched() -> List[str]:
        return seqlab_access.generate(parts, prompts, max_new)

    def constrained() -> List[str]:
        return seqlab_access.generate(parts, prompts, max_new, windows=windows)

    def run_pipe(docs: list) -> Dict[str, Any]:
        counter.reset()
        list(nlp.pipe(docs, batch_size=len(docs)))
        return {"texts": [], "forward_calls": counter.calls["n"], "info": counter.info()}

    n_words = sub.n_words
    extra = {
        "docs": len(sub.words),
        "prompts": len(prompts),
        "max_new_tokens": max_new,
        "n_demos": settings["n_demos"],
        "mean_prompt_tokens": round(sum(len(tokenizer(p)["input_ids"]) for p in prompts) / len(prompts), 1),
    }

    def generating(name: str, label: str, fn: Callable[[], List[str]]) -> System:
        return System(
            name, label, counter.counting(fn), n_words, group="generation", extra=dict(extra), inspect=inspect
        )

    single = generating("sft_generate_one_at_a_time", "SFT generate, one prompt at a time", one_at_a_time)
    batch = generating("sft_generate_batched", "SFT generate, batched", batched)
    cons = generating("sft_generate_batched_constrained", "SFT generate, batched, constrained", constrained)
    comp = System(
        "seqlab_llm_sft",
        "seqlab_llm_sft nlp.pipe",
        run_pipe,
        n_words,
        prepare=lambda: make_docs(nlp, sub),
        group="generation",
        extra=dict(extra),
        inspect=lambda out: {"forward_calls": out["forward_calls"]},
    )
    try:
        # Warm every code path once on a short job (a full warm-up pass of each would double this phase's time).
        for _ in range(min(1, bench.args.warmup)):
            seqlab_access.generate(parts, prompts[:2], 4)
            seqlab_access.generate(parts, prompts[:2], 4, windows=windows[:2])
            list(nlp.pipe(make_docs(nlp, sub.head(1))))
        bench.compare([batch, cons, comp], warmup=0)
        bench.compare([single], warmup=0)
    finally:
        counter.remove()
    for system in (single, batch, cons, comp):
        system.extra["prefill_share"] = round(
            statistics.median(p.info["prefill_wall"] / p.wall for p in system.kept), 3
        )
        system.extra["seconds_per_decoding_step"] = round(decode_step(system, "wall"), 4)
    bench.measure(
        "5a",
        "SFT batched generation vs one prompt at a time (words/s)",
        single.wall / batch.wall,
        ">=",
        5.0,
        "spacy_seqlab.hf.generation.generate on all prompts at once vs once per prompt (as spacy-llm's HF models run)",
        systems=[batch.name, single.name],
        ratio_cpu=single.cpu / batch.cpu,
    )
    bench.measure(
        "5b",
        "SFT constrained vs unconstrained decoding (time per decoding step)",
        decode_step(cons, "wall") / decode_step(batch, "wall"),
        "<=",
        1.1,
        "batched, same prompts; (pass time - prefill forward time) / decoding steps, so that outputs of other "
        "lengths compare; the constraint's work runs between the steps and is counted; end-to-end time ratio in "
        "end_to_end_ratio",
        systems=[cons.name, batch.name],
        end_to_end_ratio=round(cons.wall / batch.wall, 4),
        ratio_cpu=decode_step(cons, "cpu") / decode_step(batch, "cpu"),
    )
    bench.measure(
        "1c",
        "seqlab_llm_sft nlp.pipe vs generate on its prompts (words/s)",
        batch.wall / comp.wall,
        ">=",
        0.90,
        "the component (prompt building with demonstration selection, generation, parsing, writing) vs generate alone "
        "on prebuilt prompts, one batch",
        systems=[comp.name, batch.name],
        ratio_cpu=batch.cpu / comp.cpu,
    )
