"""Qt-free store of voices, clips and takes (stdlib sqlite3 in WAL mode, audio files beside it)."""
