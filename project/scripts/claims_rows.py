"""The thesis' claims as rows: C1 per transfer regime, C2 (unmasking, top groups, task dependence, small scale,
repetition) and C3 (SIFT, MRC, instruction, context length), each with the published number for context."""

import itertools
from typing import Dict, List, Optional, Sequence

from claims_runs import Experiment
from claims_verdicts import (
    FAILS,
    HOLDS,
    INCONCLUSIVE,
    MISSING,
    any_better,
    better,
    claim_row,
    no_gain,
    not_worse,
    test_docs,
)
from grid_c1 import C1_SHOTS, C1_VARIANTS
from grid_c2 import C2_CLAIMS_UNMASK, C2_REPEATS, shipped_pooling

# Published numbers for context, from shared/reference/methods.md (section in brackets); quoted, not measured.
C1_PUBLISHED = {
    0: "0.234/0.237/0.240 (ACE05), 0.392/0.399/0.408 (EDNYT), 0.650/0.650/0.653 (EVEXTRA)",
    5: "0.294/0.294/0.276 (ACE05), 0.458/0.466/0.448 (EDNYT), 0.659/0.661/0.653 (EVEXTRA)",
    10: "0.372/0.374/0.330 (ACE05), 0.512/0.521/0.490 (EDNYT), 0.688/0.693/0.680 (EVEXTRA)",
    50: "0.511/0.506/0.463 (ACE05), 0.581/0.592/0.568 (EDNYT), 0.750/0.764/0.741 (EVEXTRA)",
}
C1_SOURCE = (
    "F1 vanilla / implicit (our OIE embed) / explicit (our OIE head), roberta-base, MAVEN → target, mean of 3 seeds "
    "(methods.md §2.7, dd1497/oie-td results/*/Results.ipynb)"
)
PUBLISHED = {
    "c2-unmask": "Mistral-7B-v0.3, follow-up setup, causal → full unmasking: CoNLL03 NER 77.88 → 93.69, ACE05 "
    "69.77 → 76.26, Rest14 72.51 → 83.18 (methods.md §3.11, TakeLab/repetition-sl); C2's own table not retrieved",
    "c2-groups": "C2's significance test: unmasking more groups above the last unmasked one helps significantly on "
    "CoNLL03 NER and chunking, not on ACE05 and Rest14 (methods.md §3.9); no numbers retrieved",
    "c2-task": "the best of the 16 settings differs by task and is rarely 1111, at 7B (methods.md §3.1); table "
    "not retrieved",
    "c2-scale": "68M models pre-trained from scratch: no benefit from unmasking; chunking ~0.83 masked vs ~0.74 "
    "unmasked, NER ~0.60 both (methods.md §3.8, read off figures)",
    "c2-repeat": "CoNLL-03: Mistral-7B-v0.3 unmasking 93.69 vs repetition k = 4 93.79; Qwen3-8B 91.99 vs k = 8 "
    "93.00; Qwen3-1.7B 90.27 vs k = 8 91.78 (methods.md §5, TakeLab/repetition-sl)",
    "c3": "SIFT numbers not retrieved (methods.md §4.7); the abstract's shape: SIFT beats in-context learning and "
    "decoder-as-encoder, MRC is best, the instruction is largely unnecessary, long contexts hurt (§4.1, §4.8)",
}


def c1_claims(c1: Experiment) -> List[dict]:
    names = {"vanilla": "vanilla", "oie-embed": "OIE embed", "oie-head": "OIE head"}
    rows = []
    for k in (0, *C1_SHOTS):
        regime = "zero-shot" if k == 0 else f"few-shot k = {k}"
        suffix = "zero" if k == 0 else f"k{k}"
        keys = {variant: f"c1-{variant}-{suffix}" for variant in C1_VARIANTS}
        measured = [c1.measured(key, names[variant]) for variant, key in keys.items()]
        # Two variants against vanilla: Bonferroni, 97.5% intervals.
        comparisons = [
            c1.compare(keys["vanilla"], keys[variant], f"{names[variant]} − vanilla", confidence=0.975)
            for variant in ("oie-embed", "oie-head")
        ]
        rows.append(
            claim_row(
                f"C1 {regime}",
                f"An OIE signal improves news → tweets transfer ({regime})",
                c1,
                measured,
                comparisons,
                any_better(comparisons),
                "holds if the 97.5% interval (Bonferroni for two variants) of OIE embed − vanilla or OIE head − "
                "vanilla lies above 0; does not hold if both lie below 0",
                f"{C1_PUBLISHED[k]}; {C1_SOURCE}",
            )
        )
    return rows


def c2_claims(c2: Experiment, margin: float, tasks: Optional[Sequence[Experiment]] = ()) -> List[dict]:
    """C2's rows on one grid. ``tasks``: the same model's grids on other tasks, for the task-dependence row;
    None leaves that row out (for a grid that is itself one of another grid's tasks)."""
    # The claims subset runs one pooling (its config's); a full grid runs both: then the shipped config's.
    poolings = {run["pooling"] for runs in c2.runs.values() for run in runs}
    pooling = poolings.pop() if len(poolings) == 1 else shipped_pooling()
    key = {bits: f"c2-{bits}-{pooling}" for bits in C2_CLAIMS_UNMASK}
    unmasked = [f"c2-{''.join(bits)}-{pooling}" for bits in itertools.product("01", repeat=4)][1:]
    repeats = [f"c2-rep{k}-{pooling}" for k in C2_REPEATS]
    causal = key["0000"]

    def label(k: str) -> str:
        bits = k.split("-")[1]
        names = {"0000": "0000 (causal)", "1111": "1111 (all)"}
        return f"repeat {bits[3:]}" if bits.startswith("rep") else names.get(bits, bits)

    best_unmask = c2.best_on_dev(unmasked)
    best_repeat = c2.best_on_dev(repeats)
    rows = []
    chosen = best_unmask or key["1111"]
    comparison = c2.compare(causal, chosen, f"best unmasked on dev ({label(chosen)}) − causal")
    shown = list(key.values()) + ([chosen] if chosen not in key.values() else [])
    rows.append(
        claim_row(
            "C2 unmasking",
            "Removing the causal mask (in the best layer groups) beats the causal decoder",
            c2,
            [c2.measured(k, label(k)) for k in shown],
            [comparison],
            better([comparison]),
            "holds if the interval of (the unmasked setting with the best mean dev F) − 0000 lies above 0",
            PUBLISHED["c2-unmask"],
        )
    )
    contrast = c2.contrast(
        {key["0001"]: 2.0, causal: -1.0, key["1111"]: -1.0},
        "(0001 − 0000) − (1111 − 0001): the top group's gain minus the gain of the three groups below it",
    )
    steps = [c2.compare(key[a], key[b], f"{b} − {a}") for a, b in zip(C2_CLAIMS_UNMASK, C2_CLAIMS_UNMASK[1:])]
    rows.append(
        claim_row(
            "C2 top groups",
            "The layer groups near the output matter most",
            c2,
            [c2.measured(k, label(k)) for k in key.values()],
            [contrast, *steps],
            better([contrast]),
            "holds if the interval of the contrast (0001 − 0000) − (1111 − 0001) lies above 0 (unmasking the top "
            "group alone gains more than unmasking the three below it); the per-group steps are context",
            PUBLISHED["c2-groups"],
        )
    )
    if tasks is not None:
        rows.append(task_dependence([c2, *tasks]))
    comparison = c2.compare(causal, key["1111"], "1111 (all) − 0000 (causal)")
    rows.append(
        claim_row(
            "C2 small scale",
            "At small scale removing the causal mask brings no gain",
            c2,
            [c2.measured(k, label(k)) for k in (causal, key["1111"])],
            [comparison],
            no_gain(comparison, margin),
            f"holds if the interval of 1111 − 0000 lies below +{margin:g} (no gain beyond the margin); does not hold "
            "if it lies above 0",
            PUBLISHED["c2-scale"],
        )
    )
    if c2.record.get("subset") == "unmask":  # a grid made without repetition (a second task's) has no such row
        return rows
    if best_repeat and best_unmask:
        what = f"best repetition on dev ({label(best_repeat)}) − best unmasked on dev ({label(best_unmask)})"
        comparison = c2.compare(best_unmask, best_repeat, what)
    else:
        missing = [name for name, found in (("repetition", best_repeat), ("unmasking", best_unmask)) if not found]
        comparison = {"what": "repetition − unmasking", "missing": f"no runs of {' or '.join(missing)}"}
    rows.append(
        claim_row(
            "C2 repetition",
            "Sequence repetition (causal) is at least as good as unmasking",
            c2,
            [c2.measured(k, label(k)) for k in repeats + [best_unmask or key["1111"]]],
            [comparison],
            not_worse(comparison, margin),
            f"holds if the interval of (best repetition on dev) − (best unmasked on dev) lies above −{margin:g}; "
            "does not hold if it lies below 0",
            PUBLISHED["c2-repeat"],
        )
    )
    return rows


def task_name(c2: Experiment) -> str:
    """How a task's grid is named in the rows: its label (--c2-label for the main grid), else the test data its
    runs were scored on."""
    name = c2.label or getattr(c2.options, "c2_label", "")
    if name:
        return name
    tests = sorted({str(run["metrics"].get("test_data")) for runs in c2.runs.values() for run in runs})
    return " + ".join(tests) or c2.folder.name


def task_dependence(tasks: Sequence[Experiment]) -> dict:
    """Whether the best unmask setting depends on the task: one C2 grid per task, the same model and sizes.

    Each task's best setting is picked on its own dev F, so the test intervals are not biased by the pick. Where
    two tasks pick different settings, each pick is compared with the other task's pick on its own task's test
    split: the claim holds if both intervals lie above 0 (a rank reversal). Where every task picks the same
    setting, it is compared with its task's runner-up on dev: the claim does not hold if it wins on every task.
    """
    picks = [(task, task.best_on_dev(unmasked_keys(task))) for task in tasks if unmasked_keys(task)]
    measured = [
        task.measured(key, f"{task_name(task)}: {bits(key)}") for task, _ in picks for key in unmasked_keys(task)
    ]
    comparisons: List[dict] = []
    if not picks:
        verdict = (MISSING, "no runs")
    elif len(picks) == 1:
        task, pick = picks[0]
        verdict = (
            INCONCLUSIVE,
            f"1 task ({task_name(task)}, best on dev {bits(pick)}): task dependence needs grids on two or more tasks",
        )
    elif len({pick for _, pick in picks}) > 1:
        (a, pick_a), (b, pick_b) = picks[0], next((task, pick) for task, pick in picks if pick != picks[0][1])
        for task, own, other in ((a, pick_a, pick_b), (b, pick_b, pick_a)):
            what = f"{task_name(task)}: its pick {bits(own)} − the other task's pick {bits(other)}"
            comparisons.append(task.compare(other, own, what))
        verdict = better(comparisons)
        if verdict[0] == FAILS:  # a dev pick that loses on test makes the picks noise, not the opposite claim
            verdict = (INCONCLUSIVE, "an interval lies below 0: a dev pick does not hold on test")
    else:
        for task, pick in picks:
            runner = task.best_on_dev([key for key in unmasked_keys(task) if key != pick])
            what = f"{task_name(task)}: the pick {bits(pick)} − the runner-up on dev"
            if runner is None:
                comparisons.append({"what": what, "missing": "only one setting was run"})
            else:
                comparisons.append(task.compare(runner, pick, f"{what} ({bits(runner)})"))
        verdict = better(comparisons)
        if verdict[0] == HOLDS:
            verdict = (FAILS, f"every task picks {bits(picks[0][1])} and it beats the runner-up on each")
        elif verdict[0] == FAILS:
            verdict = (INCONCLUSIVE, "an interval lies below 0: a dev pick does not hold on test")
    row = claim_row(
        "C2 task-dependent",
        "The best unmask setting depends on the task",
        picks[0][0] if picks else tasks[0],
        measured,
        comparisons,
        verdict,
        "each task's best unmask setting is picked on its dev F; holds if two tasks pick different settings and "
        "on each its own pick beats the other's (both intervals above 0); does not hold if every task picks the "
        "same setting and it beats its task's runner-up on every task; needs C2 grids on two or more tasks",
        PUBLISHED["c2-task"],
    )
    if len(picks) > 1:
        row["scale"] = " / ".join(f"{task_name(task)}: {task.scale()}" for task, _ in picks) + test_docs(measured)
        row["command"] = " ; ".join(dict.fromkeys(task.command() for task, _ in picks))
    return row


def unmasked_keys(c2: Experiment) -> List[str]:
    """A C2 grid's unmask settings that ran (repetition runs are not unmask settings)."""
    return sorted(key for key in c2.runs if "-rep" not in key)


def bits(key: str) -> str:
    return key.split("-")[1]


def c3_claims(c3: Experiment, margin: float) -> List[dict]:
    sift = "c3-mrc-noinstr-2d"
    names = {
        sift: "SIFT mrc, 2 demos",
        "c3-src-noinstr-2d": "src, 2 demos",
        "c3-vanilla-noinstr-2d": "vanilla, 2 demos",
        "c3-mrc-instr-2d": "mrc + instruction, 2 demos",
        "c3-mrc-noinstr-0d": "mrc, 0 demos",
        "c3-mrc-noinstr-8d": "mrc, 8 demos",
        "c3-icl": "in-context learning (8 demos)",
        "c3-bidir": "bidir tagger (unmask 01)",
    }

    def sift_beats(claim: str, statement: str, others: Dict[str, str], rule: str) -> dict:
        """A claim that the shipped SIFT setting beats each of ``others`` (run key → contrast label)."""
        comparisons = [c3.compare(key, sift, label) for key, label in others.items()]
        measured = [c3.measured(k, names[k]) for k in (sift, *others)]
        return claim_row(claim, statement, c3, measured, comparisons, better(comparisons), rule, PUBLISHED["c3"])

    rows = [
        sift_beats(
            "C3 SIFT",
            "SIFT beats in-context learning and the decoder used as an encoder",
            {"c3-icl": "SIFT − in-context learning", "c3-bidir": "SIFT − decoder as encoder (bidir tagger)"},
            "holds if both intervals (SIFT = the shipped setting: mrc, 2 dense demos, no instruction) lie above 0",
        ),
        sift_beats(
            "C3 MRC",
            "Multi-response completion is the best loss",
            {"c3-src-noinstr-2d": "mrc − src", "c3-vanilla-noinstr-2d": "mrc − vanilla"},
            "holds if both intervals (2 demos, no instruction) lie above 0",
        ),
    ]
    comparison = c3.compare("c3-mrc-instr-2d", sift, "no instruction − instruction")
    rows.append(
        claim_row(
            "C3 instruction",
            "The instruction can be dropped",
            c3,
            [c3.measured(k, names[k]) for k in (sift, "c3-mrc-instr-2d")],
            [comparison],
            not_worse(comparison, margin),
            f"holds if the interval of (mrc, 2 demos, no instruction) − (with instruction) lies above −{margin:g}; "
            "does not hold if it lies below 0",
            PUBLISHED["c3"],
        )
    )
    comparisons = [c3.compare("c3-mrc-noinstr-8d", sift, "2 demos − 8 demos")]
    rows.append(
        claim_row(
            "C3 context length",
            "Longer contexts (8 rather than 2 demonstrations) hurt generative labeling",
            c3,
            [c3.measured(k, names[k]) for k in ("c3-mrc-noinstr-0d", sift, "c3-mrc-noinstr-8d")],
            [*comparisons, c3.compare("c3-mrc-noinstr-0d", sift, "2 demos − 0 demos")],
            better(comparisons),
            "holds if the interval of (mrc, 2 demos) − (mrc, 8 demos) lies above 0; 2 − 0 demos is context",
            PUBLISHED["c3"],
        )
    )
    return rows
