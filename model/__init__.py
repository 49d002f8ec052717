"""RTR Studio engine: a streaming, few-step, causal video DiT with a rolling KV cache.

Pure PyTorch/NumPy; never imports Qt, so it runs from scripts, the CLI and the GUI alike.
"""
