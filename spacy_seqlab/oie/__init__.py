"""``seqlab_oie``: rule-based open information extraction over a dependency parse.

* :mod:`.triples`: the :class:`~.triples.Triple` type and the per-sentence merge of overlapping triples;
* :mod:`.extraction`: the rules that find triples in a parsed Doc;
* :mod:`.component`: the ``seqlab_oie`` pipe and factory.
"""
