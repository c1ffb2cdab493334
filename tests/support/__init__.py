"""Helpers shared by the tests (signals, checkpoints, subprocess runs)."""
