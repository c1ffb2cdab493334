"""The Ray runner for ``batch --ray`` (imported only when --ray is given; Ray is optional)."""
