"""Decoder comparisons on the SmolLM2 trunk: 1a (``seqlab_bidir_tagger`` against the raw forward) and 3
(``unmask="all"`` against ``"none"``); then 7b, the scaling of the bidir tagger."""

import gc
from typing import Any, Dict

from corpus import Corpus
from measure import Bench
from scaling import scaling
from seqlab_access import resolve_model_name
from systems import pipe_system, raw_forward_system, seqlab_nlp


def decoder_phase(bench: Bench, corpus: Corpus, settings: Dict[str, Any]) -> None:
    args, batch = bench.args, settings["decoder_batch"]
    decoder = resolve_model_name(args.decoder)
    scaling_corpus, corpus = corpus, corpus.head(settings["decoder_docs"])
    raw = raw_forward_system("decoder_raw_forward", "SmolLM2 trunk raw forward", decoder, corpus, batch, "decoder")
    backbone = {"name": decoder}
    causal_nlp = seqlab_nlp("seqlab_bidir_tagger", {**backbone, "unmask": "none"}, corpus)
    causal = pipe_system(
        "seqlab_bidir_tagger_none",
        'seqlab_bidir_tagger unmask="none"',
        causal_nlp,
        corpus,
        batch,
        "decoder",
        unmask="none",
    )
    bidir_nlp = seqlab_nlp("seqlab_bidir_tagger", {**backbone, "unmask": "all"}, corpus)
    bidir = pipe_system(
        "seqlab_bidir_tagger_all", 'seqlab_bidir_tagger unmask="all"', bidir_nlp, corpus, batch, "decoder", unmask="all"
    )
    bench.compare([raw, causal, bidir])
    bench.measure(
        "1a",
        "seqlab_bidir_tagger vs raw SmolLM2 trunk forward on length-sorted batches (words/s)",
        raw.wall / causal.wall,
        ">=",
        0.90,
        'words/s of nlp.pipe (unmask="none", untrained LoRA r 8 q/v) over tokenizer + AutoModel forward over the same '
        "texts, sorted by piece count once and cut into batches of the same size (the limit)",
        systems=[causal.name, raw.name],
        ratio_cpu=raw.cpu / causal.cpu,
    )
    bench.measure(
        "3",
        'seqlab_bidir_tagger unmask="all" vs "none" (time)',
        bidir.wall / causal.wall,
        "<=",
        1.03,
        "time of nlp.pipe over the test docs, same batches; <= 1.03 means at most 3 % slower",
        systems=[bidir.name, causal.name],
        ratio_cpu=bidir.cpu / causal.cpu,
    )
    del raw, bidir, bidir_nlp
    gc.collect()
    scaling(bench, "seqlab_bidir_tagger", causal_nlp, scaling_corpus, settings["lengths"], "7b")
