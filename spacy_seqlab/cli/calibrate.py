"""``spacy seqlab-calibrate``: fit a trained tagger's span-confidence temperature on held-out data.

A tagger trained to convergence is usually over-confident: its span confidences (the marginals in
``doc.spans[...].attrs["scores"]``) run higher than the share of those spans that are right.
Temperature scaling (Guo et al., 2017) divides the tag chain's scores by one number T, fitted on
held-out data, before the marginals are computed: the predicted spans do not change, only their
confidences. The command reads annotated Docs (``.spacy``) through spaCy's ``Corpus``, as ``spacy
evaluate`` does, runs the pipes before the component on their texts, fits T
(:meth:`~spacy_seqlab.tagging.pipe.SequenceTagger.calibrate`) and saves the pipeline with it.

Registered on spaCy's CLI through the ``spacy_cli`` entry point, like ``seqlab-evaluate``.
"""

from pathlib import Path
from typing import Any, Dict, Optional

import spacy
from spacy.cli._util import Arg, Opt, app, import_code
from spacy.language import Language
from spacy.training import Corpus
from wasabi import Printer


def calibrated_component(nlp: Language, component: Optional[str]) -> str:
    """``component`` if it can be calibrated; else the pipeline's only component that can."""
    able = [name for name, pipe in nlp.pipeline if callable(getattr(pipe, "calibrate", None))]
    if component is not None:
        if component not in nlp.pipe_names:
            raise ValueError(f"The pipeline has no component {component!r}; it has {nlp.pipe_names}")
        if component not in able:
            raise ValueError(f"Component {component!r} has no span confidences to calibrate (not a seqlab tagger)")
        return component
    if len(able) != 1:
        found = f"several ({', '.join(able)}): name one with --component" if able else "none"
        raise ValueError(f"Looked for the one seqlab tagger in the pipeline to calibrate, found {found}")
    return able[0]


def seqlab_calibrate(
    pipeline: str,
    data_path: Path,
    output_dir: Path,
    *,
    component: Optional[str] = None,
    gold_preproc: bool = False,
) -> Dict[str, Any]:
    """Fit ``component``'s confidence temperature on ``data_path`` and save the pipeline to ``output_dir``.

    Returns the fit (temperature; log loss and ECE of the span confidences before and after, on
    ``data_path``) with the component's name."""
    nlp = spacy.load(pipeline)
    name = calibrated_component(nlp, component)
    examples = list(Corpus(data_path, gold_preproc=gold_preproc)(nlp))
    if not examples:
        raise ValueError(f"{data_path} holds no Docs")
    upstream = nlp.pipe_names[: nlp.pipe_names.index(name)]
    with nlp.select_pipes(enable=upstream):
        docs = list(nlp.pipe(eg.predicted for eg in examples))
    fit = nlp.get_pipe(name).calibrate(docs, [eg.reference for eg in examples])
    nlp.to_disk(output_dir)
    return {"component": name, **fit}


@app.command("seqlab-calibrate")
def seqlab_calibrate_cli(
    # fmt: off
    pipeline: str = Arg(..., help="Trained pipeline: a folder or an installed package name"),
    data_path: Path = Arg(..., help="Held-out annotated data (.spacy), e.g. the dev split", exists=True),
    output_dir: Path = Arg(..., help="Where to save the calibrated pipeline", file_okay=False),
    component: Optional[str] = Opt(None, "--component", "-n", help="The tagger to calibrate (default: the only one)"),
    code_path: Optional[Path] = Opt(None, "--code", "-c", help="Python file with registered functions to import"),
    gold_preproc: bool = Opt(False, "--gold-preproc", "-G", help="Use gold preprocessing"),
    # fmt: on
) -> None:
    """Fit the temperature of a seqlab tagger's span confidences on held-out data
    (temperature scaling: the spans stay, their confidences are recalibrated) and
    save the pipeline with it.
    """
    msg = Printer()
    import_code(code_path)
    try:
        fit = seqlab_calibrate(pipeline, data_path, output_dir, component=component, gold_preproc=gold_preproc)
    except ValueError as err:
        msg.fail(str(err), exits=1)
        return
    rows = [
        ("log loss of correctness", f"{fit['log_loss_before']:.4f}", f"{fit['log_loss_after']:.4f}"),
        ("ECE ×100", f"{fit['ece_before'] * 100:.1f}", f"{fit['ece_after'] * 100:.1f}"),
    ]
    msg.table(
        rows, header=("", "T = 1", f"T = {fit['temperature']:.3g}"), title=f"{fit['component']}: {fit['n']} spans"
    )
    msg.good(f"Saved the pipeline with confidence temperature {fit['temperature']:.3g} to {output_dir}")
