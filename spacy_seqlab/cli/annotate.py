"""``spacy seqlab-annotate`` and ``python -m spacy_seqlab annotate``: a corpus through any pipeline, nothing lost.

Both commands take the options of :class:`spacy_seqlab.scale.AnnotateSettings` (help texts from its fields)
and run :func:`spacy_seqlab.scale.annotate`. Bad options or input are one line on stderr with exit code 1.
"""

import dataclasses
from pathlib import Path
from typing import Any, Optional

import typer
from spacy.cli._util import app as spacy_app

from ..scale.settings import AnnotateSettings

_HELP = {f.name: f.metadata["help"] for f in dataclasses.fields(AnnotateSettings)}
_DEFAULTS = AnnotateSettings()


def _opt(name: str, *flags: str) -> Any:
    return typer.Option(getattr(_DEFAULTS, name), *flags, help=_HELP[name])


def run_annotate(pipeline: str, input_spec: str, output: Path, **options: Any) -> None:
    """Check the options, annotate, print a summary; any bad setting or input exits with one line."""
    from ..scale import annotate
    from ..scale.inputs import InputError
    from ..scale.output import OutputMismatchError

    try:
        settings = AnnotateSettings(**options)
        report = annotate(pipeline, input_spec, output, settings)
    except (ValueError, InputError, OutputMismatchError, OSError) as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=1) from None
    first = "-" if report.first_row_seconds is None else f"{report.first_row_seconds:.1f} s"
    typer.echo(
        f"{report.rows:,} rows ({report.errors:,} with an error) in {report.shards_written} shard(s) written, "
        f"{report.shards_skipped} already finished; engine {report.engine}; {report.seconds:.1f} s "
        f"(first row after {first}) -> {report.output}"
    )


def annotate_command(
    # fmt: off
    pipeline: str = typer.Argument(..., help="A saved pipeline folder or an installed pipeline package"),
    input_spec: str = typer.Argument(
        ..., metavar="INPUT", help="JSONL, Parquet or text file (a doc a line), a folder or a glob"
    ),
    output: Path = typer.Argument(..., help="Folder for the output shards (a rerun skips the finished ones)"),
    text_field: str = _opt("text_field", "--text-field"),
    id_field: str = _opt("id_field", "--id-field"),
    format: str = _opt("format", "--format"),
    engine: str = _opt("engine", "--engine"),
    workers: int = _opt("workers", "--workers"),
    threads_per_worker: int = _opt("threads_per_worker", "--threads-per-worker"),
    gpus_per_worker: float = _opt("gpus_per_worker", "--gpus-per-worker"),
    batch_size: int = _opt("batch_size", "--batch-size"),
    shard_size: int = _opt("shard_size", "--shard-size"),
    address: str = _opt("address", "--address"),
    cpus: int = _opt("cpus", "--cpus"),
    worker_restarts: int = _opt("worker_restarts", "--worker-restarts"),
    docbin: bool = _opt("docbin", "--docbin/--no-docbin"),
    code: Optional[str] = _opt("code", "--code", "-c"),
    # fmt: on
) -> None:
    """Annotate a corpus with any spaCy pipeline, on Ray Data or in this process: one output row per input
    row (id, entities / span groups / tags as records, error), in shards a rerun skips when finished."""
    options = {k: v for k, v in locals().items() if k not in ("pipeline", "input_spec", "output")}
    run_annotate(pipeline, input_spec, output, **options)


# spaCy finds this module through the spacy_cli entry point group; importing it registers the command.
spacy_app.command("seqlab-annotate")(annotate_command)
