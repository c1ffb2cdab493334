"""The studio's use cases, Qt-free, shared by every face (the window, the CLI, the API, ``batch``
and its Ray actors): load the models (:mod:`.models`), turn a library voice into clips
(:mod:`.voices`), and say a request: make, check (or at least trim), best of N, keep
(:mod:`.say`). A face turns its own input into these calls and their results into its own
output; none loads a model or keeps a take itself."""
