"""Error types that the command line turns into exit codes.

``ConfigError`` (exit 2) carries the file, the dotted key and the reason so the CLI can print the
one-line message ``error: FILE: KEY: REASON``. Anything else raised during a run is a runtime
failure (exit 1).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid configuration or input: the user can fix it (exit code 2).

    Args:
        reason: what is wrong, in a few words.
        key: the dotted key (``sweep.ebno_db``) or ``None`` when the whole file is at fault.
        source: the file (or ``--set``) the value came from.

    Example:
        >>> str(ConfigError("expected a list of numbers, got 'abc'", key="sweep.ebno_db",
        ...                 source="scenarios/x.yaml"))
        "scenarios/x.yaml: sweep.ebno_db: expected a list of numbers, got 'abc'"
    """

    def __init__(self, reason: str, key: str | None = None, source: str | None = None):
        self.reason = " ".join(str(reason).split())
        self.key = key
        self.source = source
        super().__init__(self.one_line())

    def one_line(self) -> str:
        parts = [p for p in (self.source, self.key) if p]
        return ": ".join([*parts, self.reason])

    def with_source(self, source: str) -> ConfigError:
        """Return a copy that names ``source`` when the error did not name a file yet."""
        return self if self.source else ConfigError(self.reason, self.key, source)
