"""Listening back, Qt-free: transcribing clips, scoring every take, keeping the best of several.

- :mod:`.text_match`: word and character error rates and the words skipped, changed or added.
- :mod:`.ending`: where the speech ends, trimming what follows, long pauses and clipping.
- :mod:`.listen`: transcribing audio of any length with the recogniser, window by window.
- :mod:`.take_check`: the whole check of a take and its verdict (good / check / bad).
- :mod:`.best_of`: N candidates as one batch, checked, the best kept (chunk by chunk).
"""
