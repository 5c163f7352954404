"""``seqlab_oie``: rule-based open information extraction over a dependency parse.
"""
