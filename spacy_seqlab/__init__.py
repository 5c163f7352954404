"""spacy-seqlab: sequence labeling with pre-trained language models in spaCy pipelines.

Registered functions live in their own modules and are exposed through entry points
(see setup.cfg), so importing this package stays cheap: torch and transformers are
imported only by the modules that need them.
"""

__version__ = "0.1.0"
