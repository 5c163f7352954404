"""``spacy seqlab-evaluate``: ``spacy evaluate`` plus the seqeval scores it leaves out.

``spacy evaluate`` prints a fixed table (TOK, NER P/R/F, ...) and drops every other key.
This command runs the same evaluation (``spacy.cli.evaluate.evaluate``: same loading,
corpus reading and JSON output), then prints the ``{prefix}_p/_r/_f/_acc`` scores of every
component scored by ``spacy_seqlab.seqeval_scorer.v1`` and their per-type tables.

spaCy finds the command through the ``spacy_cli`` entry point group, which imports
this module; importing it registers the command on spaCy's CLI app.
"""

import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from spacy.cli._util import Arg, Opt, app, import_code
from spacy.cli.evaluate import evaluate, print_prf_per_type
from wasabi import Printer

# Keys written by the seqeval scorer: its prefix always contains "seqeval".
_SEQEVAL_KEY = re.compile(r"^(?P<stem>\w*seqeval\w*?)_(?P<metric>p|r|f|acc|per_type)$")
_COLUMNS = ("p", "r", "f", "acc")


def seqeval_stems(scores: Dict[str, Any]) -> List[str]:
    """The seqeval scorer prefixes present in ``scores``, in order of first appearance."""
    stems: Dict[str, None] = {}
    for key in scores:
        match = _SEQEVAL_KEY.match(key)
        if match and match.group("metric") in _COLUMNS:
            stems.setdefault(match.group("stem"))
    return list(stems)


def _percent(value: Any) -> str:
    return f"{value * 100:.2f}" if isinstance(value, (int, float)) else "-"


def print_seqeval_scores(scores: Dict[str, Any], *, silent: bool = False) -> None:
    """Print one table of every seqeval prefix's P/R/F/ACC, then each prefix's per-type table."""
    msg = Printer(no_print=silent, pretty=not silent)
    stems = seqeval_stems(scores)
    if not stems:
        msg.warn("No seqeval scores: no component uses the spacy_seqlab.seqeval_scorer.v1 scorer")
        return
    rows = [[stem] + [_percent(scores.get(f"{stem}_{column}")) for column in _COLUMNS] for stem in stems]
    msg.table(rows, header=("", "P", "R", "F", "ACC"), aligns=("l", "r", "r", "r", "r"), title="seqeval (strict)")
    for stem in stems:
        per_type = scores.get(f"{stem}_per_type")
        if per_type:
            print_prf_per_type(msg, per_type, stem, "type")


def seqlab_evaluate(
    model: str,
    data_path: Path,
    output: Optional[Path] = None,
    use_gpu: int = -1,
    gold_preproc: bool = False,
    silent: bool = True,
) -> Dict[str, Any]:
    """Run ``spacy evaluate`` on ``model`` and ``data_path``, then print the seqeval scores.

    Returns the scores ``spacy.cli.evaluate.evaluate`` returns (all keys, seqeval's
    included); ``output`` is written by spaCy's evaluate, as with ``spacy evaluate``.
    """
    scores = evaluate(model, data_path, output=output, use_gpu=use_gpu, gold_preproc=gold_preproc, silent=silent)
    print_seqeval_scores(scores, silent=silent)
    return scores


@app.command("seqlab-evaluate")
def seqlab_evaluate_cli(
    # fmt: off
    model: str = Arg(..., help="Model name or path"),
    data_path: Path = Arg(..., help="Location of binary evaluation data in .spacy format", exists=True),
    output: Optional[Path] = Opt(None, "--output", "-o", help="Output JSON file for metrics", dir_okay=False),
    code_path: Optional[Path] = Opt(None, "--code", "-c", help="Python file with registered functions to import"),
    use_gpu: int = Opt(-1, "--gpu-id", "-g", help="GPU ID or -1 for CPU"),
    gold_preproc: bool = Opt(False, "--gold-preproc", "-G", help="Use gold preprocessing"),
    # fmt: on
) -> None:
    """Evaluate a trained pipeline like `spacy evaluate`, and also print the seqeval
    (strict mode) scores and per-type tables of components scored with
    spacy_seqlab.seqeval_scorer.v1.
    """
    import_code(code_path)
    seqlab_evaluate(model, data_path, output=output, use_gpu=use_gpu, gold_preproc=gold_preproc, silent=False)
