"""Persistent settings (QSettings) with typed defaults, in a scope the caller chooses.

Settings are split the way the window shows them: *live* settings apply instantly, *engine* settings
need a model reload. Window geometry, splitter state, the last source and style and the user's own
style presets are stored here too. "Reset to defaults" clears the settings and the layout but keeps
the user presets (they are the user's content, not preferences).
"""
from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings, QStandardPaths

ORGANIZATION = "RTR Studio"
APPLICATION = "RTR Studio"

DEFAULTS: dict[str, object] = {
    # live: applied instantly
    "live/strength": 1.0,
    "live/speed": "quality",  # model.speed: quality, balanced or fast
    "live/steps": 0,  # 0: the speed preset's
    "live/adacache": "",  # "": the speed preset's; else off, slow or fast
    "live/crossfade": True,
    "live/crossfade_ms": 300,
    "source/loop": True,
    "output/layout": "stylized",  # or "side_by_side"
    "output/folder": "",  # "": the system's video folder / RTR Studio
    "view/single": False,
    # engine: need a reload
    "engine/model_dir": "",  # "": the embedded default model
    "engine/device": "auto",
    "engine/resolution": "",  # "WxH" or "": the model's own
}

LAYOUT_KEYS = ("window/geometry", "window/state", "window/views_splitter", "window/main_splitter")


class AppSettings:
    def __init__(self, organization: str = ORGANIZATION, application: str = APPLICATION,
                 path: str | Path | None = None):
        """``path``: an explicit INI file (tests, portable installs); otherwise the platform's
        per-user store for ``organization``/``application``."""
        if path is not None:
            self.q = QSettings(str(path), QSettings.Format.IniFormat)
        else:
            self.q = QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, organization, application)
        self.organization, self.application = organization, application

    # -------------------------------------------------------------------------- typed values
    def get(self, key: str):
        default = DEFAULTS[key]
        if not self.q.contains(key):
            return default
        raw = self.q.value(key)
        try:
            if isinstance(default, bool):
                return raw if isinstance(raw, bool) else str(raw).strip().lower() in ("1", "true", "yes", "on")
            if isinstance(default, int):
                return int(raw)
            if isinstance(default, float):
                return float(raw)
            return "" if raw is None else str(raw)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value) -> None:
        if key not in DEFAULTS:
            raise KeyError(key)
        self.q.setValue(key, value)

    def reset_defaults(self) -> None:
        for key in list(DEFAULTS) + list(LAYOUT_KEYS):
            self.q.remove(key)
        self.q.sync()

    def sync(self) -> None:
        self.q.sync()

    # ------------------------------------------------------------------------ binary / JSON
    def get_bytes(self, key: str) -> QByteArray | None:
        v = self.q.value(key)
        return v if isinstance(v, QByteArray) and not v.isEmpty() else None

    def set_bytes(self, key: str, value: QByteArray) -> None:
        self.q.setValue(key, value)

    def get_json(self, key: str, default=None):
        raw = self.q.value(key)
        if not raw:
            return default
        try:
            return json.loads(str(raw))
        except (TypeError, ValueError):
            return default

    def set_json(self, key: str, value) -> None:
        self.q.setValue(key, json.dumps(value))

    @property
    def last_source(self) -> dict | None:
        return self.get_json("state/last_source")

    @last_source.setter
    def last_source(self, value: dict | None) -> None:
        self.set_json("state/last_source", value)

    @property
    def last_style(self) -> dict | None:
        return self.get_json("state/last_style")

    @last_style.setter
    def last_style(self, value: dict | None) -> None:
        self.set_json("state/last_style", value)

    @property
    def user_presets(self) -> list[dict]:
        v = self.get_json("gallery/user_presets", [])
        return v if isinstance(v, list) else []

    @user_presets.setter
    def user_presets(self, value: list[dict]) -> None:
        self.set_json("gallery/user_presets", value)

    # ----------------------------------------------------------------------------- folders
    def output_folder(self) -> Path:
        folder = self.get("output/folder")
        if folder:
            return Path(folder)
        base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.MoviesLocation) or str(Path.home())
        return Path(base) / "RTR Studio"


def parse_resolution(text: str) -> tuple[int, int] | None:
    """'320x192' (width x height) -> (192, 320) as (height, width); '' -> None."""
    text = (text or "").strip().lower().replace("×", "x")
    if not text:
        return None
    try:
        w, h = (int(v) for v in text.split("x"))
    except ValueError:
        return None
    return (h, w) if w > 0 and h > 0 else None


def format_resolution(hw: tuple[int, int] | None) -> str:
    return "" if not hw else f"{hw[1]}x{hw[0]}"
