"""Type aliases for the thinc models of spacy-seqlab, so signatures read as contracts."""

from typing import List

from spacy.tokens import Doc
from thinc.api import Model
from thinc.types import Floats2d, Ints1d

# Docs → one row of features per spaCy token (the backbone and everything built on it).
DocFeaturesModel = Model[List[Doc], List[Floats2d]]
TokenLabels = List[Ints1d]
