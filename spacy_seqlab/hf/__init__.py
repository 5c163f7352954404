"""Hugging Face layers: model loading (hub, folder, GGUF), LoRA, attention and causal-mask
removal, the backbone's thinc layers and batched generation.
"""
