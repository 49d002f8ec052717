"""Where the engine used to live. The live engine is now plain Python (``app/engine.py``), its Qt
adapter is ``app/qt_engine.py`` and the stylizer is built by ``model/build.py``; these names stay
importable from here so code written against the old module keeps working."""
from __future__ import annotations

from model.build import (
           available_devices,
           build_stylizer,
           device_label,
           is_out_of_memory,
           resolve_device,
)

from .engine import (
           EngineEvents,
           LiveEngine,
           LoadRequest,
           ModelInfo,
           StyleChange,
           matched_style,
)
from .frames import CapturedFrame, FrameQueue, StylizedFrame
from .qt_engine import QtEngine as EngineWorker

__all__ = ["CapturedFrame", "EngineEvents", "EngineWorker", "FrameQueue", "LiveEngine", "LoadRequest", "ModelInfo",
           "StyleChange", "StylizedFrame", "available_devices", "build_stylizer", "device_label", "is_out_of_memory",
           "matched_style", "resolve_device"]
