"""The optional local HTTP API: the same core as the CLI and the window, over HTTP."""
