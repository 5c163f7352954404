"""``python -m spacy_seqlab``: the data commands of :mod:`spacy_seqlab.cli.commands`."""

from .cli.commands import app

if __name__ == "__main__":
    app(prog_name="python -m spacy_seqlab")
