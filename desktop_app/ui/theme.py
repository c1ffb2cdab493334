"""Light and dark, following the desktop's colour scheme (Qt 6's style hints) unless the user
picks one (View → Appearance). Fusion draws both the same way on every desktop; the dark
palette is the usual Fusion dark one, so the waveforms, the timeline and every widget that
paints with the palette follow it."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette
from PySide6.QtWidgets import QApplication

SCHEMES = ("system", "light", "dark")
_chosen = {"scheme": "system", "following": False}  # what the user picked; whether we listen


def dark_palette() -> QPalette:
    """Fusion's dark palette (text and controls light on dark grey, blue selection)."""
    palette = QPalette()
    role = QPalette.ColorRole
    colours = {
        role.Window: "#2b2b2b",
        role.WindowText: "#e6e6e6",
        role.Base: "#1f1f1f",
        role.AlternateBase: "#2f2f2f",
        role.ToolTipBase: "#3a3a3a",
        role.ToolTipText: "#e6e6e6",
        role.Text: "#e6e6e6",
        role.Button: "#353535",
        role.ButtonText: "#e6e6e6",
        role.BrightText: "#ff6b6b",
        role.Highlight: "#3d7ad6",
        role.HighlightedText: "#ffffff",
        role.Link: "#7fb2ff",
        role.Mid: "#555555",
        role.PlaceholderText: "#8c8c8c",
    }
    for which, colour in colours.items():
        palette.setColor(which, QColor(colour))
    for which in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, which, QColor("#7a7a7a"))
    return palette


def system_is_dark() -> bool:
    """Whether the desktop asks for a dark scheme (False where it does not say)."""
    return QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark


def apply_scheme(scheme: str) -> bool:
    """Use ``scheme`` ("system", "light" or "dark") for the whole app; whether it is dark."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    _chosen["scheme"] = scheme
    dark = scheme == "dark" or (scheme == "system" and system_is_dark())
    app.setStyle("Fusion")
    style = app.style()
    app.setPalette(dark_palette() if dark else style.standardPalette())
    return dark


def follow_system(scheme: str) -> None:
    """Apply ``scheme`` now, and the user's choice again whenever the desktop's scheme changes
    (it matters for "system"; listened to once per process)."""
    apply_scheme(scheme)
    if not _chosen["following"]:
        _chosen["following"] = True
        QGuiApplication.styleHints().colorSchemeChanged.connect(
            lambda _: apply_scheme(str(_chosen["scheme"]))
        )
