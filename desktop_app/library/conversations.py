"""Conversations kept in the library: a script, its cast and base seed, and the take (and codes)
of each line made so far. A line goes with its take."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from desktop_app.library.database import Database, LibraryError
from desktop_app.library.files import FileStore
from desktop_app.library.records import (
    TAKE_QUERY,
    ConversationLineRecord,
    ConversationRecord,
    take_of,
)

CONVERSATION_QUERY = (
    "SELECT id, name, script, cast_json, seed, created, modified FROM conversations"
)
LINE_QUERY = (
    "SELECT conversation_id, line_index, speaker, text, take_id, codes_file, report "
    "FROM conversation_lines"
)


class Conversations:
    """Save a conversation, keep its lines, list, read and remove them."""

    def __init__(self, db: Database, files: FileStore) -> None:
        self.db, self.files = db, files

    def save(
        self,
        name: str,
        script: str,
        cast: dict[str, str],
        seed: int,
        turns: Sequence[tuple[str, str]],
    ) -> ConversationRecord:
        """Keep a conversation's script, cast and seed (a new one, or the one of that name).

        ``turns`` are the script's (speaker, text) in order: a made line whose turn is no
        longer the same goes (its take stays in the history).
        """
        name = name.strip()
        if not name:
            raise LibraryError("give the conversation a name")
        now = time.time()
        with self.db.transaction():
            self.db.execute(
                "INSERT INTO conversations (name, script, cast_json, seed, created, modified) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET script = "
                "excluded.script, cast_json = excluded.cast_json, seed = excluded.seed, "
                "modified = excluded.modified",
                (name, script, json.dumps(cast), int(seed), now, now),
            )
            conversation_id = self._id(name)
            gone = [
                (conversation_id, row["line_index"])
                for row in self.db.rows(
                    "SELECT line_index, speaker, text FROM conversation_lines "
                    "WHERE conversation_id = ?",
                    (conversation_id,),
                )
                if row["line_index"] >= len(turns)
                or tuple(turns[row["line_index"]]) != (row["speaker"], row["text"])
            ]
            self.db.executemany(
                "DELETE FROM conversation_lines WHERE conversation_id = ? AND line_index = ?",
                gone,
            )
        return self.get(name)

    def set_line(
        self,
        name: str,
        index: int,
        speaker: str,
        text: str,
        take_id: int,
        codes: np.ndarray,
        report: dict[str, Any],
    ) -> None:
        """Keep line ``index`` of a stored conversation (replacing the one made before)."""
        codes_file = self.files.store_codes(codes)
        with self.db.transaction():
            conversation_id = self._id(name)
            self.db.execute(
                "INSERT OR REPLACE INTO conversation_lines (conversation_id, line_index, speaker, "
                "text, take_id, codes_file, report) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    conversation_id,
                    index,
                    speaker,
                    text,
                    take_id,
                    self.files.relative(codes_file),
                    json.dumps(report),
                ),
            )
            self.db.execute(
                "UPDATE conversations SET modified = ? WHERE id = ?", (time.time(), conversation_id)
            )

    def _id(self, name: str) -> int:
        rows = self.db.rows("SELECT id FROM conversations WHERE name = ?", (name,))
        if not rows:
            raise LibraryError(f"no conversation named {name!r} in the library")
        return int(rows[0]["id"])

    def get(self, name: str) -> ConversationRecord:
        """One stored conversation with its lines.

        Raises:
            LibraryError: no such conversation.
        """
        found = self._conversations("WHERE name = ?", (name,))
        if not found:
            raise LibraryError(f"no conversation named {name!r} in the library")
        return found[0]

    def all(self) -> list[ConversationRecord]:
        """Every stored conversation, the last changed first."""
        return self._conversations("ORDER BY modified DESC, id DESC", ())

    def _conversations(self, clause: str, args: tuple[Any, ...]) -> list[ConversationRecord]:
        """The conversations, their lines and the lines' takes: three queries in all."""
        rows = self.db.rows(f"{CONVERSATION_QUERY} {clause}", args)
        ids = [row["id"] for row in rows]
        lines: dict[int, list[Any]] = {conversation_id: [] for conversation_id in ids}
        if ids:
            marks = ", ".join("?" for _ in ids)
            for line in self.db.rows(
                f"{LINE_QUERY} WHERE conversation_id IN ({marks}) "
                "ORDER BY conversation_id, line_index",
                ids,
            ):
                lines[line["conversation_id"]].append(line)
        take_ids = sorted({line["take_id"] for found in lines.values() for line in found})
        folder = self.files.folder
        takes = {}
        if take_ids:
            marks = ", ".join("?" for _ in take_ids)
            takes = {
                take.id: take
                for take in (
                    take_of(row, folder)
                    for row in self.db.rows(f"{TAKE_QUERY} WHERE t.id IN ({marks})", take_ids)
                )
            }
        return [
            ConversationRecord(
                row["id"],
                row["name"],
                row["script"],
                json.loads(row["cast_json"]),
                row["seed"],
                row["created"],
                row["modified"],
                tuple(
                    ConversationLineRecord(
                        line["line_index"],
                        line["speaker"],
                        line["text"],
                        takes[line["take_id"]],
                        folder / line["codes_file"],
                        json.loads(line["report"]),
                    )
                    for line in lines[row["id"]]
                ),
            )
            for row in rows
        ]

    def remove(self, name: str) -> None:
        """Forget a conversation (its lines' takes stay in the history)."""
        with self.db.transaction():
            self.db.execute("DELETE FROM conversations WHERE id = ?", (self._id(name),))
