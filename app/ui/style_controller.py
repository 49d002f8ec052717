"""Styles: gallery presets (built in and the user's own), typed prompts, reference images, and the
style remembered from the last session. A style switch is a command to the engine; what the window
shows (highlighted preset, "Now: …", the remembered style) follows the engine's ``styleApplied``."""
from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from model.style import IMAGE_SUFFIXES, StyleSpec

from ..worker import EngineWorker, StyleChange
from .actions import make_action
from .banner import BannerArea
from .controls import ControlsPanel
from .gallery import GalleryPanel, Preset, import_reference_image, load_presets, user_presets_from
from .prompt_box import PromptBox
from .settings import AppSettings

DEFAULT_PROMPT = "watercolor painting"


class StyleController(QObject):
    message = Signal(str, int)  # a status-bar message and how long to show it (ms)

    def __init__(self, window: QWidget, worker: EngineWorker, settings: AppSettings, gallery: GalleryPanel,
                 prompt: PromptBox, controls: ControlsPanel, banners: BannerArea, gallery_dir: Path,
                 data_dir: Path):
        super().__init__(window)
        self.window, self.worker, self.settings = window, worker, settings
        self.gallery, self.prompt, self.controls, self.banners = gallery, prompt, controls, banners
        self.gallery_dir, self.data_dir = gallery_dir, data_dir
        self.builtin_presets: list[Preset] = []
        self.user_presets: list[Preset] = []
        self.current: StyleChange | None = None
        self._keys: dict[StyleSpec, str | None] = {}  # which preset (if any) each requested style came from
        self._menu: QMenu | None = None
        self.preset_actions: list[QAction] = []

        self.add_image_action = make_action(self, "Add reference image…", self.add_image_dialog, "Ctrl+I",
                                            tip="Use an image's style")
        self.prompt_focus_action = make_action(self, "Focus prompt", prompt.focus_edit, "Ctrl+L")
        gallery.list.presetActivated.connect(self.apply_preset)
        gallery.list.removeRequested.connect(self.remove_user_preset)
        gallery.addImageRequested.connect(self.add_image_dialog)
        prompt.submitted.connect(self.apply_prompt)
        worker.styleApplied.connect(self._applied)
        worker.styleFailed.connect(self._failed)

    @property
    def presets(self) -> list[Preset]:
        return self.gallery.list.presets

    def attach_menu(self, menu: QMenu) -> None:
        """Style menu entries for the first nine presets, on Ctrl+1 … Ctrl+9, are kept in ``menu``."""
        self._menu = menu
        self._rebuild_menu()

    def load_gallery(self) -> None:
        self.builtin_presets, problems = load_presets(self.gallery_dir)
        self.user_presets = user_presets_from(self.settings.user_presets)
        self.gallery.list.set_presets(self.builtin_presets + self.user_presets)
        self.gallery.set_notice("; ".join(problems[:3]))
        self._rebuild_menu()

    def _rebuild_menu(self) -> None:
        if self._menu is None:
            return
        for a in self.preset_actions:
            self._menu.removeAction(a)
            a.deleteLater()
        self.preset_actions = []
        for i, preset in enumerate(self.presets[:9]):
            a = QAction(preset.name, self.window)
            a.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.triggered.connect(partial(self.select_preset, i))
            self._menu.addAction(a)
            self.preset_actions.append(a)

    # ------------------------------------------------------------------------------ choosing
    def choose_initial(self, force: bool = False) -> None:
        """The last session's style (preset, prompt or reference image), else the first preset."""
        if self.worker.style is not None and not force:
            return
        last = self.settings.last_style or {}
        if last.get("kind") == "preset":
            for p in self.presets:
                if p.key == last.get("key"):
                    self.apply_preset(p, set_strength=False)
                    return
        if last.get("kind") == "text" and last.get("prompt"):
            self.apply_prompt(last["prompt"])
            return
        if last.get("kind") == "reference" and last.get("reference") and Path(last["reference"]).is_file():
            ref = Path(last["reference"])
            preset = next((p for p in self.presets if p.reference == ref), None)
            if preset is not None:
                self.apply_preset(preset, set_strength=False)
            else:
                self._apply(StyleSpec(reference=ref), ref.stem, None)
            return
        if self.presets:
            self.apply_preset(self.presets[0], set_strength=False)
        else:
            self.apply_prompt(DEFAULT_PROMPT)

    def select_preset(self, index: int) -> None:
        if 0 <= index < len(self.presets):
            self.apply_preset(self.presets[index])

    def apply_preset(self, preset: Preset, set_strength: bool = True) -> None:
        if set_strength and preset.strength is not None:
            self.controls.set_strength(preset.strength)
        self._apply(preset.spec(), preset.name, preset.key)

    def apply_prompt(self, text: str) -> None:
        text = text.strip()
        if text:
            self._apply(StyleSpec(prompt=text), f"“{text}”", None)

    def _apply(self, spec: StyleSpec, label: str, key: str | None) -> None:
        self._keys[spec] = key
        self.gallery.list.highlight(key)
        self.worker.set_style(spec, label)

    def _applied(self, change: StyleChange) -> None:
        self.current = change
        key = self._keys.get(change.spec)
        self.gallery.list.highlight(key)
        self.prompt.show_style(change.label, change.spec.prompt if change.spec.kind == "text" else None,
                               change.matched)
        self.banners.clear("style")
        if key and key.startswith("preset:"):
            self.settings.last_style = {"kind": "preset", "key": key}
        elif change.spec.reference is not None:
            self.settings.last_style = {"kind": "reference", "reference": str(change.spec.reference)}
        else:
            self.settings.last_style = {"kind": "text", "prompt": change.spec.prompt}
        matched = f" \u2192 rendered as {change.matched}" if change.matched else ""
        self.message.emit(f"Style: {change.label}{matched}", 6000 if matched else 3000)

    def _failed(self, message: str) -> None:
        self.banners.show_message("style", f"The style could not be applied: {message}")
        if self.worker.style is None and self.worker.model_info is not None:
            # nothing is running (e.g. the remembered reference image is gone): fall back
            if self.presets and self.presets[0].reference is None:
                self.apply_preset(self.presets[0], set_strength=False)
            else:
                self.apply_prompt(DEFAULT_PROMPT)

    # ------------------------------------------------------------------------------ reference images
    def add_image_dialog(self) -> None:
        patterns = " ".join(f"*{s}" for s in sorted(IMAGE_SUFFIXES))
        path, _ = QFileDialog.getOpenFileName(self.window, "Choose a reference image", str(Path.home()),
                                              f"Images ({patterns})")
        if path:
            self.add_reference_image(path)

    def add_reference_image(self, path: str | Path) -> Preset | None:
        """Make an image a style: checked, copied into the app data folder, added to the gallery as a
        user preset (saved across runs) and switched to."""
        from model.stylizer import StyleError, load_image

        path = Path(path)
        try:
            load_image(path)
            stored = import_reference_image(path, self.data_dir / "styles")
        except StyleError as e:
            self.banners.show_message("style", f"Cannot use {path.name} as a style: {e}")
            return None
        except OSError as e:
            self.banners.show_message("style", f"Cannot copy {path.name} into {self.data_dir}: {e.strerror or e}")
            return None
        preset = next((p for p in self.user_presets if p.reference == stored), None)
        if preset is None:
            preset = Preset(path.stem, reference=stored, thumbnail=stored, user=True)
            self.user_presets.append(preset)
            self._save_user_presets()
        self.apply_preset(preset)
        return preset

    def add_image_data(self, image: QImage) -> Preset | None:
        """A picture dropped as pixels (not a file): saved as a PNG first, then used like a file."""
        if image.isNull():
            self.banners.show_message("style", "The dropped picture could not be read", level="warning")
            return None
        tmp = self.data_dir / "styles" / f"dropped-{time.strftime('%Y%m%d-%H%M%S')}.png"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(tmp), "PNG"):
            self.banners.show_message("style", f"Cannot save the dropped picture in {tmp.parent}", level="warning")
            return None
        try:
            return self.add_reference_image(tmp)
        finally:
            tmp.unlink(missing_ok=True)

    def remove_user_preset(self, preset: Preset) -> None:
        self.user_presets = [p for p in self.user_presets if p.key != preset.key]
        self._save_user_presets()
        if preset.reference is not None and self.data_dir in preset.reference.parents:
            preset.reference.unlink(missing_ok=True)

    def _save_user_presets(self) -> None:
        self.settings.user_presets = [p.to_user_dict() for p in self.user_presets]
        self.settings.sync()
        self.gallery.list.set_presets(self.builtin_presets + self.user_presets)
        self._rebuild_menu()
        if self.current is not None:
            self.gallery.list.highlight(self._keys.get(self.current.spec))
