"""Token classification: one pipe (:mod:`.pipe`) and one architecture (:mod:`.model`,
``spacy_seqlab.Tagger.v1``) with auxiliary signals (:mod:`.signals`), offered as the
``seqlab_bidir_tagger`` and ``seqlab_multitask_ner`` factories (:mod:`.factories`).
"""
