"""The window's side of a remote engine: the app on this computer, the model on another one.

Settings ▸ "Remote engine…" asks for the address of a ``main.py serve`` and its token (both
remembered) and puts a ``RemoteEngine`` behind the window's engine adapter; "Use this computer" puts
the local engine back. Style, cross-fade and the load settings shown in the controls carry over, so
the gallery, prompt, references, speed, recording and the latency figures work as before. While
remote, the status bar shows the round trip of a frame and the network's part of it; a lost
connection shows a banner while the engine reconnects with back-off (what was recorded is kept).
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QWidget

from ..engine import LiveEngine
from ..qt_engine import QtEngine
from ..remote.client import RemoteEngine, parse_url
from .actions import make_action
from .banner import BannerArea
from .settings import AppSettings
from .status_bar import StatusBar

SETTINGS_KEY = "remote/engine"  # JSON: {"url": ..., "token": ..., "on": bool}


class RemoteDialog(QDialog):
    """Address and token of a remote engine; the address is checked before the dialog closes."""

    def __init__(self, url: str, token: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Remote engine")
        self.url = QLineEdit(url)
        self.url.setPlaceholderText("http://gpu-machine:8765")
        self.token = QLineEdit(token)
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("the token the server prints or reads from --token-file")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #e05050;")
        hint = QLabel("On the machine with the GPU: <tt>python main.py serve --host 0.0.0.0 --token-file "
                      "token.txt</tt>")
        hint.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Connect")
        buttons.accepted.connect(self._check)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow(hint)
        form.addRow("Address", self.url)
        form.addRow("Token", self.token)
        form.addRow(self.error)
        form.addRow(buttons)

    def values(self) -> tuple[str, str]:
        return parse_url(self.url.text()), self.token.text().strip()

    def _check(self) -> None:
        try:
            _, token = self.values()
        except ValueError as e:
            self.error.setText(str(e))
            return
        if not token:
            self.error.setText("enter the server's token")
            return
        self.accept()


class RemoteController(QObject):
    message = Signal(str, int)  # a status-bar message and how long to show it (ms)

    def __init__(self, window: QWidget, worker: QtEngine, settings: AppSettings, banners: BannerArea,
                 status: StatusBar, reload):
        super().__init__(window)
        self.window, self.worker, self.settings, self.banners, self.status = window, worker, settings, banners, status
        self._reload = reload  # the engine controller's reload (it sends the controls' settings)
        self.action = make_action(self, "Remote engine…", self.choose)
        self.local_action = make_action(self, "Use this computer", self.use_local)
        self.local_action.setEnabled(False)
        self.hud = QLabel("")
        self.hud.setVisible(False)
        status.addPermanentWidget(self.hud)
        self.timer = QTimer(self)
        self.timer.setInterval(500)
        self.timer.timeout.connect(self.update_hud)
        worker.connectionChanged.connect(self._connection)

    @property
    def remote(self) -> RemoteEngine | None:
        engine = self.worker.engine
        return engine if isinstance(engine, RemoteEngine) else None

    def saved(self) -> dict:
        value = self.settings.get_json(SETTINGS_KEY, {})
        return value if isinstance(value, dict) else {}

    # ------------------------------------------------------------------------------ switching
    def restore(self) -> None:
        """At start-up: the remote engine the app was last using, if any (before the engine starts)."""
        saved = self.saved()
        if saved.get("on") and saved.get("url"):
            try:
                self.connect_to(saved["url"], saved.get("token", ""), reload=False)
            except ValueError:
                pass

    def choose(self) -> None:
        saved = self.saved()
        dialog = RemoteDialog(saved.get("url", ""), saved.get("token", ""), self.window)
        if dialog.exec() == QDialog.DialogCode.Accepted:
            self.connect_to(*dialog.values())

    def connect_to(self, url: str, token: str, reload: bool = True) -> RemoteEngine:
        """Drive the engine at ``url`` from now on (ValueError: not an address)."""
        engine = RemoteEngine(url, token)
        self.settings.set_json(SETTINGS_KEY, {"url": engine.url, "token": engine.token, "on": True})
        self._swap(engine, reload)
        self.message.emit(f"Connecting to the remote engine at {engine.url}…", 4000)
        return engine

    def use_local(self) -> None:
        self.settings.set_json(SETTINGS_KEY, {**self.saved(), "on": False})
        self._swap(LiveEngine(), reload=True)
        self.banners.clear("remote")
        self.message.emit("Stylizing on this computer", 4000)

    def retry_now(self) -> None:
        if self.remote is not None:
            self.remote.retry_now()

    def _swap(self, engine, reload: bool) -> None:
        style, fade = self.worker.style, self.worker.crossfade_s
        self.worker.use_engine(engine)
        self.worker.set_crossfade(fade)
        if style is not None:
            self.worker.set_style(*style)
        remote = isinstance(engine, RemoteEngine)
        self.local_action.setEnabled(remote)
        self.hud.setVisible(remote)
        self.hud.setText(f"Remote: {engine.url}" if remote else "")
        if remote:
            self.timer.start()
        else:
            self.timer.stop()
        if reload:
            self._reload()

    def shutdown(self) -> None:
        self.timer.stop()

    # ------------------------------------------------------------------------------ reporting
    def _connection(self, state: str, detail: str) -> None:
        remote = self.remote
        if remote is None:
            return
        if state == "connected":
            self.banners.clear("remote")
            self.message.emit(f"Connected to the remote engine at {remote.url}", 4000)
        elif state == "lost":
            self.banners.show_message(
                "remote", f"Remote engine: {detail}. What was recorded so far is kept.", level="warning",
                actions=[("Reconnect now", self.retry_now), ("Use this computer", self.use_local)])
        elif state == "failed":
            self.banners.show_message(
                "remote", f"The remote engine at {remote.url} refused the connection: {detail}",
                actions=[("Remote engine…", self.choose), ("Use this computer", self.use_local)])
        self.update_hud()

    def update_hud(self) -> None:
        remote = self.remote
        if remote is None:
            return
        s = remote.stats()
        where = remote.model_info.device_label if remote.model_info else remote.url
        if remote.state != "connected":
            self.hud.setText(f"Remote: {remote.state} · {remote.url}")
        elif s.get("round_trip_ms") is None:
            self.hud.setText(f"Remote: {where}")
        else:
            trip, net = s["round_trip_ms"], s["network_ms"]
            share = 100 * net / trip if trip > 0 else 0
            self.hud.setText(f"Remote: round trip {trip:.0f} ms · network {net:.0f} ms ({share:.0f}%)")
        rtt = f"{s['rtt_ms']:.1f} ms" if s.get("rtt_ms") is not None else "–"
        self.hud.setToolTip(f"{where}\n{remote.url}\nping round trip {rtt}\n"
                            "round trip: a frame sent → its stylized frame back; network: that, less the time "
                            f"it spent in the server's engine\nreconnects: {s.get('reconnects', 0)}")
