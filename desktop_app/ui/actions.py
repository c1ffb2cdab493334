"""The window's menus and keyboard shortcuts, declared once in a table.

Each :class:`Command` names a menu entry (its menu, text, keys, tooltip) and what it does: a
method of the window, by its attribute path (``"takes.save_dialog"``), called with ``argument``
when given. :func:`build_menus` makes the menus from :data:`COMMANDS` and the window-wide keys
from :data:`KEYS`; :func:`shortcut_rows` lists them for Help → Keyboard shortcuts (F1), with the
panels' own button and widget shortcuts found among the window's children.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtGui import QAction, QActionGroup, QKeySequence, QShortcut
from PySide6.QtWidgets import QAbstractButton, QMainWindow


@dataclass(frozen=True)
class Command:
    """A menu entry: where it is, what it says, its keys, and what it does."""

    menu: str
    text: str
    does: str  # the window's attribute path of the callable ("takes.save_dialog")
    keys: str = ""  # a key sequence, or the name of a QKeySequence.StandardKey ("Undo")
    name: str = ""  # the window keeps the action as ``window.actions[name]``
    tooltip: str = ""
    argument: str | None = None  # passed to the callable (the View menu's schemes)
    checkable: bool = False
    group: str = ""  # exclusive with the other entries of this group
    separator_before: bool = False
    undo: str = ""  # "undo" or "redo": the undo stack's own action (its text follows the stack)


@dataclass(frozen=True)
class Key:
    """A key of the whole window that is no menu entry."""

    keys: str
    does: str
    what: str


COMMANDS: tuple[Command, ...] = (
    Command("&File", "&Import clip…", "import_dialog", "Ctrl+O"),
    Command("&File", "&Save take as…", "takes.save_dialog", "Ctrl+S"),
    Command(
        "&File",
        "&Clean up library files…",
        "housekeeping.clean_up_dialog",
        name="cleanup",
        tooltip="Remove audio files of the library that no voice, clip, take or conversation uses",
        separator_before=True,
    ),
    Command("&File", "&Quit", "close", "Ctrl+Q"),
    Command("&Edit", "&Undo", "undo.undo", "Undo", undo="undo"),
    Command("&Edit", "&Redo", "undo.redo", "Redo", undo="redo"),
    Command("&Model", "&Choose or download model…", "loader.setup"),
    Command("&Model", "&Reload model", "loader.reload"),
    *(
        Command(
            "&Model",
            text,
            "loader.set_weights",
            name=f"weights-{choice}",
            argument=choice,
            checkable=True,
            group="weights",
            separator_before=choice == "auto",
            tooltip=tip + " Reloads the model",
        )
        for choice, text, tip in (
            (
                "auto",
                "Weights: &automatic",
                "int8 weights on the CPU, the float weights on a GPU.",
            ),
            (
                "int8",
                "Weights: int&8 (CPU)",
                "A quarter of the memory of float32 and faster; very close to it.",
            ),
            (
                "int4",
                "Weights: int&4 (CPU, fastest)",
                "An eighth of the memory of float32 and the fastest; a little less exact.",
            ),
            ("none", "Weights: &float32", "The exact weights: slowest on a CPU, most memory."),
        )
    ),
    Command("&Model", "&Listen-back models…", "loader.choose_listen_models"),
    Command(
        "&Model",
        "Serve the local &API",
        "api_switch.serve",
        name="api",
        checkable=True,
        separator_before=True,
        tooltip="Let other programs on this computer speak with the loaded model: OpenAI's "
        "/v1/audio/speech and /clone-voice on 127.0.0.1 (off by default)",
    ),
    Command(
        "&View",
        "&Like the desktop",
        "set_scheme",
        name="scheme-system",
        argument="system",
        checkable=True,
        group="scheme",
    ),
    Command(
        "&View",
        "L&ight",
        "set_scheme",
        name="scheme-light",
        argument="light",
        checkable=True,
        group="scheme",
    ),
    Command(
        "&View",
        "&Dark",
        "set_scheme",
        name="scheme-dark",
        argument="dark",
        checkable=True,
        group="scheme",
    ),
    Command("&Help", "&Keyboard shortcuts", "show_shortcuts", "F1"),
    Command("&Help", "&Test this computer…", "self_test.run"),
    Command("&Help", "Open &log folder", "open_log_folder"),
    Command("&Help", "&About CSM Studio", "about"),
)

KEYS: tuple[Key, ...] = (
    Key("Ctrl+Return", "generate", "Generate the take"),
    Key("Ctrl+Enter", "generate", "Generate the take"),
    Key("Esc", "cancel", "Cancel what is being made"),
)


def _callable(window: Any, command: Command | Key) -> Callable[..., Any]:
    target = operator.attrgetter(command.does)(window)
    argument = getattr(command, "argument", None)
    if argument is not None:
        return lambda *_: target(argument)
    if getattr(command, "checkable", False):
        return target  # gets the checked state
    return lambda *_: target()


def _sequence(keys: str) -> QKeySequence:
    standard = getattr(QKeySequence.StandardKey, keys, None)
    return QKeySequence(standard) if standard is not None else QKeySequence(keys)


def build_menus(
    window: QMainWindow, commands: tuple[Command, ...] = COMMANDS, keys: tuple[Key, ...] = KEYS
) -> dict[str, QAction]:
    """The window's menus and keys from the table; the named actions by name."""
    menus: dict[str, Any] = {}
    groups: dict[str, QActionGroup] = {}
    named: dict[str, QAction] = {}
    for command in commands:
        menu = menus.get(command.menu)
        if menu is None:
            menu = menus[command.menu] = window.menuBar().addMenu(command.menu)
        if command.separator_before:
            menu.addSeparator()
        if command.undo:
            stack = operator.attrgetter("undo")(window)
            make = stack.createUndoAction if command.undo == "undo" else stack.createRedoAction
            action = make(window, command.text)
        else:
            action = QAction(command.text, window)
            action.setCheckable(command.checkable)
            action.triggered.connect(_callable(window, command))
        if command.keys:
            action.setShortcut(_sequence(command.keys))
        if command.tooltip:
            action.setToolTip(command.tooltip)
        if command.group:
            groups.setdefault(command.group, QActionGroup(window)).addAction(action)
        menu.addAction(action)
        named[command.name or command.does] = action
    for key in keys:
        QShortcut(QKeySequence(key.keys), window, _callable(window, key)).setWhatsThis(key.what)
    return named


def shortcut_rows(window: QMainWindow) -> list[tuple[str, str]]:
    """Every keyboard shortcut of the window, once each: (keys, what it does)."""
    found: dict[str, str] = {}
    for action in window.findChildren(QAction):
        keys = action.shortcut().toString()
        if keys:
            found.setdefault(keys, action.text().replace("&", "").rstrip("…"))
    for button in window.findChildren(QAbstractButton):
        keys = button.shortcut().toString()
        if keys:
            what = button.toolTip().split(" (")[0] or button.text()
            found.setdefault(keys, what.strip("▶■★⟲ "))
    for shortcut in window.findChildren(QShortcut):
        keys = shortcut.key().toString()
        if keys:
            found.setdefault(keys, shortcut.whatsThis() or shortcut.objectName())
    return sorted(found.items(), key=lambda kv: (len(kv[0]), kv[0]))
