"""Conversations, Qt-free: a script of several voices, spoken with CSM's own context.

- :mod:`.script`: the script (``Name: text`` lines, pauses, comments; or JSON Lines) and the cast.
- :mod:`.context`: what of the conversation fits the 2048 positions before each new line.
- :mod:`.speak`: the lines made one after another, each on top of the lines before it.
- :mod:`.render`: the mix, one stem per speaker, subtitles and the report.
"""
