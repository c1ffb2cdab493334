"""Qt-free audio: file I/O, signal processing, voice-reference preparation, devices."""
