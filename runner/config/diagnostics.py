"""Diagnostics: every problem found in a config, located, collected and shown at once.

>>> d = Diagnostic("error", "bad-type", "app.txt", 12, "streammux", "batch-size",
...                "'four' is not an integer", "write a whole number, e.g. batch-size=4")
>>> str(d)
"app.txt:12 [streammux] batch-size: 'four' is not an integer — write a whole number, e.g. batch-size=4"
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass
from typing import Iterable

from runner.errors import DsrunError

#: stable codes for tools (dsrun check --json)
CODES = ("missing-file", "unknown-key", "unknown-group", "bad-type", "bad-enum", "out-of-range",
         "duplicate-key", "syntax", "encoding", "inconsistent", "unsupported", "unreadable")


@dataclass(frozen=True, slots=True)
class Diagnostic:
    severity: str  # "error" | "warning"
    code: str
    file: str
    line: int | None
    group: str | None
    key: str | None
    message: str
    hint: str = ""

    def __post_init__(self) -> None:
        assert self.severity in ("error", "warning"), self.severity
        assert self.code in CODES, self.code

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def location(self) -> str:
        where = self.file + (f":{self.line}" if self.line else "")
        if self.group is not None:
            where += f" [{self.group}]"
        if self.key is not None:
            where += f" {self.key}"
        return where

    def __str__(self) -> str:
        text = f"{self.location()}: {self.message}"
        return f"{text} — {self.hint}" if self.hint else text

    def as_dict(self) -> dict:
        return asdict(self)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known spelling, if one is close enough.

    >>> did_you_mean("batch-szie", ["batch-size", "width"])
    'batch-size'
    """
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return found[0] if found else None


class ConfigError(DsrunError):
    """A config that cannot run; ``diagnostics`` holds every problem found (errors and warnings)."""

    exit_code = 2

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = list(diagnostics)
        errors = [d for d in self.diagnostics if d.is_error]
        lines = [str(d) for d in errors] or [str(d) for d in self.diagnostics]
        n = len(errors)
        super().__init__(f"{n} error{'s' if n != 1 else ''} in the configuration:\n  "
                         + "\n  ".join(lines))
