"""``seqlab_llm_sft``: generative labeling by supervised in-context fine-tuning (prompts,
responses, demonstrations, the pipe, and its spacy-llm task and model).
"""
