"""Failure intelligence: from a failed job's log and annotations to its failure lines.

Pure code, no I/O: `ingest/joblogs.py` streams logs from GitHub into an
`Extractor`, the demo feeds it the logs it makes, and `store/joblogs.py`
stores the `Extraction`.  The ordered rules are `failures/rules.toml` plus the
user's file (`FAILURE_RULES`), loaded by `failures.rules.load`; each
captured line is normalised into a fingerprint by `failures.fingerprint`.
"""
from dataclasses import dataclass

CLASSES = ("test", "build", "lint", "infra", "timeout", "unknown")


@dataclass(frozen=True)
class FailureLine:
    rule: str  # the name of the rule that matched
    klass: str  # one of CLASSES
    text: str  # the failure line as shown: timestamp prefix, ANSI and control characters removed, <= 500 chars
    fingerprint: str  # 16 hex digits (failures.fingerprint)
    line: int | None  # 1-based line number in the log; for an annotation, its line in its file
    source: str  # "log" | "annotation"
    path: str | None = None  # an annotation's file
    fallback: bool = False  # matched by a last-resort rule (exit code, catch-all)


@dataclass(frozen=True)
class Extraction:
    lines: list  # FailureLine, primary first, at most MAX_LINES
    excerpt: str  # the kept log lines: around each failure line and the log's last lines, "…" between gaps
    log_bytes: int  # bytes of log fed
    truncated: bool  # the reader stopped at its cap before the log ended
