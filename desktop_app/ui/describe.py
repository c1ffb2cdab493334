"""Tooltips and accessible names, given in one place per panel."""

from __future__ import annotations

from PySide6.QtWidgets import QWidget


def describe(*controls: tuple[QWidget, str, str]) -> None:
    """For each (widget, tooltip, accessible name): the tooltip unless it has one, the name."""
    for widget, tip, name in controls:
        widget.setToolTip(widget.toolTip() or tip)
        widget.setAccessibleName(name)
