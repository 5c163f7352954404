"""8a-8d: what sequence repetition costs and what early exit saves, for ``seqlab_bidir_tagger`` on SmolLM2.

Words/s of ``nlp.pipe`` with ``repeat`` = 1, 2, 4 (8a-8c) and with ``exit_layer`` at two thirds of the depth
(8d), each as a ratio against ``repeat = 0`` with all layers, all causal (``unmask = "none"``), one bench run.
A window read k + 1 times costs at least k + 1 times the positions, so 8a-8c target at least 0.9 / (k + 1)
of the plain speed (no more than 10 % above the linear cost); early exit must recover at least the depth
ratio (layers / layers run).
"""

import gc
from typing import Any, Dict

from corpus import Corpus
from measure import Bench
from seqlab_access import resolve_model_name
from systems import pipe_system, seqlab_nlp

REPEATS = {"8a": 1, "8b": 2, "8c": 4}
# Tweets are shorter than 96 pieces; 5 copies of such a window also fit a small model's 512 positions.
WINDOW = {"window": 96, "stride": 72}


def n_layers(model_dir: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(model_dir).num_hidden_layers)


def repetition_phase(bench: Bench, corpus: Corpus, settings: Dict[str, Any]) -> None:
    decoder = resolve_model_name(bench.args.decoder)
    corpus, batch = corpus.head(settings["decoder_docs"]), settings["decoder_batch"]
    depth = n_layers(decoder)
    exit_layer = max(1, round(depth * 2 / 3))

    def system(name: str, label: str, **backbone: Any):
        nlp = seqlab_nlp("seqlab_bidir_tagger", {"name": decoder, "unmask": "none", **WINDOW, **backbone}, corpus)
        return pipe_system(name, label, nlp, corpus, batch, "decoder", **backbone)

    plain = system("seqlab_bidir_tagger_repeat0", 'seqlab_bidir_tagger unmask="none" repeat=0', repeat=0)
    for key, k in REPEATS.items():
        repeated = system(f"seqlab_bidir_tagger_repeat{k}", f"seqlab_bidir_tagger repeat={k}", repeat=k)
        bench.compare([plain, repeated])
        bench.measure(
            key,
            f"seqlab_bidir_tagger repeat={k} vs repeat=0 (words/s)",
            plain.wall / repeated.wall,
            ">=",
            round(0.9 / (k + 1), 4),
            f"words/s of nlp.pipe with repeat={k} (each window read {k + 1} times) over repeat=0, same docs and "
            f"batches; >= 0.9 / {k + 1}: at most 10 % above the cost of {k + 1} times the positions",
            systems=[repeated.name, plain.name],
            ratio_cpu=plain.cpu / repeated.cpu,
        )
        del repeated
        gc.collect()
    early = system(
        "seqlab_bidir_tagger_exit", f"seqlab_bidir_tagger exit_layer={exit_layer} of {depth}", exit_layer=exit_layer
    )
    bench.compare([plain, early])
    bench.measure(
        "8d",
        f"seqlab_bidir_tagger exit_layer={exit_layer} of {depth} layers vs all layers (words/s)",
        plain.wall / early.wall,
        ">=",
        round(depth / exit_layer, 4),
        f"words/s of nlp.pipe reading layer {exit_layer} (the {depth - exit_layer} layers above never run) over "
        f"all {depth} layers, repeat=0; early exit must recover at least the depth ratio {depth}/{exit_layer}",
        systems=[early.name, plain.name],
        ratio_cpu=plain.cpu / early.cpu,
    )
