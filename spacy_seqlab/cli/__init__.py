"""Command line: ``python -m spacy_seqlab`` data commands and ``spacy seqlab-evaluate``."""
