"""The error every layer raises for a problem a person can act on.

The CLI prints ``str(error)`` (no traceback unless ``--debug``) and exits with ``exit_code``.
Each layer subclasses it beside the code that raises it (``ConfigError`` in ``config/``,
``EngineError`` in ``engine/``, ``SourceError`` in ``pipeline/``) so the message carries the file, the
source or the model it is about, and what to do.
"""


class DsrunError(Exception):
    """A problem with the user's input or environment, explained; never a bug."""

    exit_code = 1
