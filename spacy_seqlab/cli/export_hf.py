"""``spacy seqlab-export-hf``: a trained tagger as a plain Hugging Face / peft token classifier.

Registered on spaCy's CLI through the ``spacy_cli`` entry point, like ``seqlab-evaluate``. What
is written is described in :mod:`spacy_seqlab.tagging.export`; it loads with
:func:`spacy_seqlab.hf.export.load_exported` (plain transformers + peft + torch).
"""

from pathlib import Path
from typing import Any, Dict, Optional

import spacy
from spacy.cli._util import Arg, Opt, app, import_code
from wasabi import Printer

from ..tagging.export import ExportError, export_tagger


def seqlab_export_hf(
    pipeline: str, component: str, output_dir: Path, *, include_base: Optional[bool] = None
) -> Dict[str, Any]:
    """Load ``pipeline`` and export its ``component`` to ``output_dir``; returns what was written."""
    nlp = spacy.load(pipeline)
    return export_tagger(nlp, component, output_dir, include_base=include_base)


@app.command("seqlab-export-hf")
def seqlab_export_hf_cli(
    pipeline: str = Arg(..., help="Trained pipeline: a folder or an installed package name"),
    component: str = Arg(..., help="Name of the seqlab tagger component to export"),
    output_dir: Path = Arg(..., help="Folder to write (new or empty)", file_okay=False),
    include_base: Optional[bool] = Opt(
        None,
        "--include-base/--no-include-base",
        help="Copy a LoRA adapter's base into OUTPUT_DIR/base (default: when the hub cannot name it exactly)",
    ),
    code_path: Optional[Path] = Opt(None, "--code", "-c", help="Python file with registered functions to import"),
) -> None:
    """Export a seqlab tagger as a Hugging Face token classifier: a peft adapter
    (TOKEN_CLS) or the full model, with the tag head and id2label. Load it with
    spacy_seqlab.hf.export.load_exported(OUTPUT_DIR), which needs only transformers,
    peft and torch.
    """
    msg = Printer()
    import_code(code_path)
    try:
        written = seqlab_export_hf(pipeline, component, output_dir, include_base=include_base)
    except ExportError as err:
        msg.fail(str(err), exits=1)
        return
    base = written["base"] or "unnamed"
    msg.good(f"Exported {component!r} as a {written['kind']} with {len(written['tags'])} tags to {output_dir}")
    if written["kind"] == "peft adapter":
        revision = f" (revision {written['revision']})" if written["revision"] else ""
        msg.info(
            f"Base model: {base}{revision}"
            + (f"; a copy is in {output_dir / 'base'}" if written["base_included"] else "")
        )
        if not written["base_included"] and not written["base_exact"]:
            msg.warn(
                "The base the adapter was trained on is not the hub's exact weights (a local folder or a converted "
                "GGUF): pass base= to load_exported, or export again with --include-base"
            )
    msg.text(f"Load it with: from spacy_seqlab.hf.export import load_exported; load_exported({str(output_dir)!r})")
