"""CSM Studio: offline voice cloning with Sesame's CSM-1B.

This package's top level stays import-light: ``desktop_app.inference`` must import on a machine
that has only torch, transformers and numpy.
"""

__version__ = "0.1.0"
APP_NAME = "CSM Studio"
