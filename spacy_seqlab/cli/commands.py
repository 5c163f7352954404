"""Command line: ``python -m spacy_seqlab wnut16 | convert | resources | annotate``.

* ``wnut16 OUTPUT_DIR``: the packaged WNUT-16 NER data as train/dev/test DocBins (shared split).
* ``convert INPUT OUTPUT_DIR``: the same for any CoNLL-style file.
* ``resources``: where each packaged model and data set is, and SmolLM2's cached conversion.
* ``annotate PIPELINE INPUT OUTPUT``: a corpus through any pipeline (:mod:`spacy_seqlab.cli.annotate`).

Bad input is reported as one line on stderr with exit code 1, not a stack trace.
"""

import time
from pathlib import Path
from typing import Dict, List, NoReturn

import typer

from ..data.conll import DEFAULT_FRACTIONS, SPLITS, convert, corpus_stats, read_docbin
from ..data.resources import (
    RESOURCES,
    SMOLLM2,
    ResourceNotInstalled,
    smollm2_dir,
    wnut16_path,
)
from .annotate import annotate_command

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="spacy-seqlab data and resource tools.",
)

DEFAULT_FRACTIONS_TEXT = ",".join(f"{f:g}" for f in DEFAULT_FRACTIONS)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)


def parse_fractions(text: str) -> List[float]:
    """``"0.7,0.15,0.15"`` → ``[0.7, 0.15, 0.15]``; a ValueError names the bad text."""
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(
            f"--fractions must be comma-separated numbers such as {DEFAULT_FRACTIONS_TEXT}, got {text!r}"
        ) from None


def format_stats_table(stats: Dict[str, Dict], unit: str) -> str:
    """One column per split: docs, words, ``unit`` (e.g. entities) and the count per label."""
    labels: Dict[str, int] = {}
    for split_stats in stats.values():
        for label, count in split_stats["spans_per_label"].items():
            labels[label] = labels.get(label, 0) + count
    ranked = sorted(labels, key=lambda label: (-labels[label], label))
    rows = [("docs", "docs"), ("words", "words"), (unit, "spans")]
    name_width = max([len(unit)] + [len(label) + 2 for label in ranked])
    widths = {split: max(len(split), 7) for split in stats}
    lines = [" " * name_width + "".join(f"  {split:>{widths[split]}}" for split in stats)]
    for name, key in rows:
        lines.append(f"{name:<{name_width}}" + "".join(f"  {stats[s][key]:>{widths[s]}}" for s in stats))
    for label in ranked:
        cells = "".join(f"  {stats[s]['spans_per_label'].get(label, 0):>{widths[s]}}" for s in stats)
        lines.append(f"{'  ' + label:<{name_width}}" + cells)
    return "\n".join(lines)


def _convert_and_report(input_path: Path, output_dir: Path, *, target: str, unit: str, **options: object) -> None:
    from spacy.vocab import Vocab

    try:
        paths = convert(input_path, output_dir, target=target, **options)  # type: ignore[arg-type]
    except (ValueError, OSError) as error:  # ConllFormatError is a ValueError
        _fail(str(error))
    vocab = Vocab()
    stats = {split: corpus_stats(read_docbin(paths[split], vocab), target) for split in SPLITS}
    typer.echo(f"Wrote {', '.join(str(paths[split]) for split in SPLITS)}")
    typer.echo(format_stats_table(stats, unit))


def _unit_for(target: str) -> str:
    if target == "ents":
        return "entities"
    return "spans" if target.startswith("spans:") else "tagged tokens"


@app.command("wnut16")
def wnut16_command(
    output_dir: Path = typer.Argument(..., help="Folder for train.spacy, dev.spacy and test.spacy"),
    seed: int = typer.Option(0, help="Seed of the shared train/dev/test split"),
) -> None:
    """Convert the packaged WNUT-16 Twitter NER data to DocBins."""
    try:
        source = wnut16_path()
    except ResourceNotInstalled as error:
        _fail(str(error))
    typer.echo(f"WNUT-16 from {source}; split {DEFAULT_FRACTIONS_TEXT}, seed {seed}")
    _convert_and_report(source, output_dir, target="ents", unit="entities", scheme="iob2", seed=seed)


@app.command("convert")
def convert_command(
    input_path: Path = typer.Argument(..., metavar="INPUT", help="CoNLL-style file: one token per line"),
    output_dir: Path = typer.Argument(..., help="Folder for train.spacy, dev.spacy and test.spacy"),
    target: str = typer.Option("ents", help="ents, spans:KEY, tag or pos"),
    scheme: str = typer.Option("auto", help="Tag scheme of the input: auto, iob1, iob2 or bioes"),
    fractions: str = typer.Option(DEFAULT_FRACTIONS_TEXT, help="Train,dev,test fractions"),
    seed: int = typer.Option(0, help="Seed of the train/dev/test split"),
    word_column: int = typer.Option(0, help="Column of the words (negative counts from the end)"),
    tag_column: int = typer.Option(-1, help="Column of the tags (negative counts from the end)"),
) -> None:
    """Convert a CoNLL-style file to train/dev/test DocBins and print corpus statistics."""
    try:
        split_fractions = parse_fractions(fractions)
    except ValueError as error:
        _fail(str(error))
    _convert_and_report(
        input_path,
        output_dir,
        target=target,
        unit=_unit_for(target),
        scheme=scheme,
        fractions=split_fractions,
        seed=seed,
        word_column=word_column,
        tag_column=tag_column,
    )


@app.command("resources")
def resources_command(
    convert_smollm2: bool = typer.Option(True, "--convert/--no-convert", help="Convert and cache SmolLM2 (once)"),
) -> None:
    """Show where each packaged model and data set is, and cache SmolLM2's converted weights."""
    missing: List[str] = []
    for resource in RESOURCES:
        try:
            where = str(resource.path())
        except ResourceNotInstalled as error:
            missing.append(resource.distribution)
            where = f"MISSING: {error}"
        typer.echo(f"{resource.description}\n  {resource.distribution}: {where}")
    if convert_smollm2 and SMOLLM2.distribution not in missing:
        start = time.perf_counter()
        try:
            folder = smollm2_dir()
        except (OSError, ValueError, ImportError) as error:
            _fail(f"converting SmolLM2 failed: {error}")
        seconds = time.perf_counter() - start
        typer.echo(
            f"SmolLM2 as a Hugging Face folder: {folder}\n  {seconds:.1f} s (converted on first use, then reused)"
        )
    if missing:
        _fail(f"not installed: {', '.join(missing)}")


app.command("annotate")(annotate_command)
