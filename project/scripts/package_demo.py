"""Package a trained pipeline with `spacy package`, install the wheel into a private folder, and load it
from a fresh interpreter (no network) to annotate a sample text.

    python scripts/package_demo.py MODEL OUT_DIR --name NAME
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLE = "Just landed in New York with @Taylor , heading to Madison Square Garden for the Knicks game tonight !"


def run(args, **kwargs) -> str:
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise SystemExit(f"{' '.join(map(str, args[:4]))} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("output", type=Path)
    parser.add_argument("--name", default="seqlab_demo")
    parser.add_argument("--version", default="0.0.1")
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    run(
        [
            sys.executable,
            "-m",
            "spacy",
            "package",
            str(args.model),
            str(args.output),
            "--name",
            args.name,
            "--version",
            args.version,
            "--build",
            "wheel",
            "--force",
        ]
    )
    wheel = sorted(args.output.glob(f"**/dist/*{args.name}*.whl"))[-1]
    site = args.output / "site"
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--upgrade", "--target", str(site), str(wheel)])
    meta = json.loads(next(args.output.glob(f"**/{'en_' + args.name}*/meta.json")).read_text())
    # Each entity with its confidence, read from the span group that holds the tagger's span scores.
    script = (
        "import json, spacy, sys; nlp = spacy.load(sys.argv[1]); doc = nlp(sys.argv[2]);"
        "scores = {(s.start, s.end, s.label_): float(p) for g in doc.spans.values()"
        " for s, p in zip(g, g.attrs.get('scores', []))};"
        "print(json.dumps([[e.text, e.label_, scores.get((e.start, e.end, e.label_))] for e in doc.ents]))"
    )
    # The wheel, and the spacy-seqlab the workflow runs (when it comes from PYTHONPATH rather than an install).
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    out = run([sys.executable, "-c", script, f"en_{args.name}", SAMPLE], env=env)
    entities = json.loads(out.strip().splitlines()[-1])
    record = {
        "wheel": str(wheel),
        "size_mb": round(wheel.stat().st_size / 1e6, 1),
        "requirements": meta.get("requirements", []),
        "sample": SAMPLE,
        "entities": entities,
    }
    (args.output / "demo.json").write_text(json.dumps(record, indent=2))
    print(f"Packaged {wheel.name} ({record['size_mb']} MB), requires {record['requirements']}")
    print(f"Loaded from the installed wheel, offline: {SAMPLE!r}\n  -> {entities}")


if __name__ == "__main__":
    main()
