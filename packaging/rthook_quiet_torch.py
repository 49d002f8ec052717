# PyInstaller runtime hook: the trimmed bundle keeps torch's modules as bytecode only (see
# torch_collection_mode() in rtr_studio.spec), so at `import torch` torch.jit._overload warns once
# per overloaded function that it cannot read the source. That only matters to TorchScript, which
# RTR Studio never uses, so these warnings are silenced instead of printed at every start.
import warnings

warnings.filterwarnings("ignore", message=r"Unable to retrieve source for @torch\.jit\._overload",
                        category=UserWarning)
