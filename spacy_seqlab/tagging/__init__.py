"""Token classification: the tagger pipe and model, auxiliary signals, and the
``seqlab_bidir_tagger`` and ``seqlab_multitask_ner`` factories.
"""
