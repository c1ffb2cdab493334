"""Qt-free batch rendering: the input's lines, the resumable manifest, and the work that makes a
voice's lines; the local ``batch`` command and the Ray runner (:mod:`desktop_app.cluster`) both
drive it."""
