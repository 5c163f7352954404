"""C1's grid: domain transfer with the OIE signal. Train on news (silver labels), test on tweets zero-shot and
after few-shot fine-tuning on k target tweets (in this process): vanilla vs OIE `embed` vs OIE `head`."""

import argparse
import itertools
import json
import random
import shutil
import time
from pathlib import Path
from typing import Any, Dict, List

import spacy
from grid_runs import CONFIGS, HERE, common_overrides, run_script, take_run, train_and_evaluate, write_config
from spacy.tokens import DocBin
from spacy.training import Example
from spacy.util import fix_random_seed
from thinc.api import Config, Optimizer, registry

C1_VARIANTS = ("vanilla", "oie-embed", "oie-head")
C1_SHOTS = (5, 10, 50)


def constant_rate_optimizer(config: Config) -> Optimizer:
    """The pipeline's training optimizer at the peak rate of its schedule, held constant (the paper's few-shot
    rate is constant up to a 0.99 decay per epoch). A fresh warm-up schedule would stay at rate 0: thinc only
    advances schedules in spacy train's loop."""
    settings = dict(config["training"]["optimizer"])
    rate = settings["learn_rate"]
    settings["learn_rate"] = float(rate["initial_rate"] if isinstance(rate, dict) else rate)
    return registry.resolve({"optimizer": settings})["optimizer"]


def few_shot(
    source: Path, examples: List[Example], output: Path, seed: int, epochs: int = 10, batch_size: int = 5
) -> Path:
    """Fine-tune a trained pipeline's tagger on a few target examples (the paper: batch 5, 10 epochs, last
    epoch); returns the saved pipeline's folder."""
    fix_random_seed(seed)
    nlp = spacy.load(source)
    upstream = [name for name in nlp.pipe_names if name != "seqlab_ner"]
    examples = [Example(nlp.make_doc(eg.reference.text), eg.reference) for eg in examples]
    optimizer = nlp.resume_training(sgd=constant_rate_optimizer(nlp.config))
    start = time.perf_counter()
    for epoch in range(epochs):
        random.Random(epoch).shuffle(examples)
        for i in range(0, len(examples), batch_size):
            nlp.update(examples[i : i + batch_size], sgd=optimizer, exclude=upstream, annotates=upstream)
    output.mkdir(parents=True, exist_ok=True)
    seconds = round(time.perf_counter() - start, 1)
    (output / "train_time.json").write_text(json.dumps({"name": output.name, "train_seconds": seconds}))
    nlp.to_disk(output / "model-last")
    return output / "model-last"


def grid_c1(args: argparse.Namespace) -> None:
    from evaluate import evaluate_pipeline, write_metrics

    if args.gpu_id >= 0:
        spacy.require_gpu(args.gpu_id)  # the few-shot runs train and test in this process
    data = args.output / "corpus"
    if not (data / "tweets_test.spacy").exists():
        run_script([HERE / "prepare_transfer.py", "--output", data, "--seed", 0])
    variants = {
        "vanilla": CONFIGS / "multitask_minilm_wnut16_vanilla_cpu.cfg",
        "oie-embed": CONFIGS / "multitask_minilm_wnut16_cpu.cfg",
        "oie-head": CONFIGS / "multitask_minilm_wnut16_cpu.cfg",
    }
    nlp = spacy.blank("en")
    target_train = list(DocBin().from_disk(data / "tweets_train.spacy").get_docs(nlp.vocab))
    with_spans = [doc for doc in target_train if len(doc.ents)]  # the paper samples sentences with a label
    test = data / "tweets_test.spacy"
    for seed, (variant, base) in itertools.product(args.seeds, variants.items()):
        overrides: Dict[str, Any] = {
            **common_overrides(args, seed, args.encoder_steps, args.encoder_lr),
            "components.seqlab_ner.model.backbone.name": args.encoder,
            "corpora.train": {
                "@readers": "spacy.Corpus.v1",
                "path": str(data / "news_train.spacy"),
                "gold_preproc": False,
                "max_length": 0,
                "limit": args.train_size,
                "augmenter": None,
            },
            "corpora.dev": {
                "@readers": "spacy.Corpus.v1",
                "path": str(data / "news_dev.spacy"),
                "gold_preproc": False,
                "max_length": 0,
                "limit": args.dev_size,
                "augmenter": None,
            },
        }
        if variant != "vanilla":
            mode = "embed" if variant == "oie-embed" else "head"
            overrides["components.seqlab_ner.model.signals"] = {
                "oie": {
                    "source": "spans:oie_rel",
                    "mode": mode,
                    "width": 50,
                    "learn_rate_factor": 10.0,
                    "loss_weight": 1.0,
                }
            }
        name = f"c1-{variant}-zero-s{seed}"
        config = write_config(base, overrides, args.output / "configs" / f"{name}.cfg")
        train_and_evaluate(args.output, name, config, test, f"C1 {variant}", "zero-shot", gpu_id=args.gpu_id)
        source = args.output / "training" / name / "model-last"
        for k, sample in itertools.product(C1_SHOTS, range(args.samples)):
            shot = f"c1-{variant}-k{k}-{sample}-s{seed}"
            metrics = args.output / "metrics" / f"{shot}.json"
            if metrics.exists() or not source.exists() or not take_run(shot):
                continue
            draw = 1000 * seed + 100 * k + sample  # the same shots for every variant
            chosen = random.Random(draw).sample(with_spans, min(k, len(with_spans)))
            training = args.output / "training" / shot
            model = few_shot(source, [Example(doc, doc) for doc in chosen], training, draw)
            result = evaluate_pipeline(
                model, test, shot, f"C1 {variant}", f"few-shot k={k}", predictions=training / "predictions.spacy"
            )
            write_metrics(result, metrics)
            shutil.rmtree(model)  # only the predictions are needed, and a MiniLM pipeline is ~90 MB
