"""The ordered failure rules: the built-in `failures/rules.toml` plus a user's file (`FAILURE_RULES`).

A user's rules come first, so they win; `disable = ["name", ...]` in the user's file turns built-in rules
off.  Patterns are RE2 (google-re2): matching time is linear in the line's length whatever the pattern, so a
user's rule cannot stall the processor on a hostile log (no catastrophic backtracking).  Every problem in a file
is a `RulesError` naming the file, the rule (1-based index and name) and what is wrong, so a bad file stops the
start with a message a user can act on.
"""
import os
import re
import threading
import tomllib
from collections import OrderedDict
from dataclasses import dataclass

import re2

from failures import CLASSES

BUILTIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rules.toml")
KEYS = {"name", "class", "pattern", "capture", "fallback", "scope", "ignore_case", "last", "ignore"}
SCOPES = ("", "job")
# A GitHub log line starts with its timestamp ("2024-03-01T10:00:00.1234567Z "); rules are written for the line
# without it.  Extraction scans whole blocks before removing it, so the scan lets it follow each `^`.
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?"


class RulesError(ValueError):
    """A rules file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Rule:
    name: str
    klass: str  # one of CLASSES ("unknown" for an ignore rule)
    pattern: str  # RE2, matched against one line without its timestamp and ANSI escapes
    capture: str | None = None  # named group whose text is the failure line (default: the whole line)
    fallback: bool = False  # last resort: only used when no other rule matched any line
    scope: str = ""  # "job": the fingerprint includes the job's identity
    ignore_case: bool = False
    last: bool = False  # use the rule's last occurrence in the log rather than its first
    ignore: bool = False  # lines it matches are noise: no later rule sees them, they are never failure lines
    origin: str = ""  # the file it came from


class Rules:
    """The rules in order plus the compiled forms extraction needs.

    `regexes[i]` is rule i's own pattern (for its capture group); `classify` finds the first rule in order that
    matches one cleaned line with a single RE2 set match; `scanner(live)` is one combined regex over the
    patterns of the `live` rules that finds candidate lines in a block of raw log lines (a superset: each
    candidate is then classified); `scan` is the one over every non-ignore rule.
    """

    def __init__(self, rules: list[Rule]):
        self.rules = tuple(rules)
        self.index = {rule.name: i for i, rule in enumerate(self.rules)}
        self.regexes = tuple(_compile(_flagged(rule)) for rule in self.rules)
        options = _options()
        self._set = re2.Set.SearchSet(options)
        for rule in self.rules:
            self._set.Add(_flagged(rule).encode("utf-8"))
        self._set.Compile()
        self._alternatives = {i: f"(?:{_anchor_after_timestamp(_flagged(rule))})"
                              for i, rule in enumerate(self.rules) if not rule.ignore}
        self._scanners: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self.scan = self.scanner(frozenset(self._alternatives))

    def __len__(self) -> int:
        return len(self.rules)

    def __iter__(self):
        return iter(self.rules)

    def scanner(self, live: frozenset):
        """One regex over a block of raw lines that finds every line a rule in `live` (indexes) could match.

        Extraction narrows `live` as rules stop mattering for a log (a rule with enough lines, fallbacks once a
        real failure line is found), so a log full of error lines stops producing candidates; the few distinct
        sets a process sees are compiled once (about 6 ms each) and cached.
        """
        live = frozenset(i for i in live if i in self._alternatives)
        if not live:
            return None
        with self._lock:  # one Rules serves every extraction thread
            scanner = self._scanners.get(live)
            if scanner is not None:
                self._scanners.move_to_end(live)
                return scanner
        options = _options()
        body = "|".join(self._alternatives[i] for i in sorted(live))
        scanner = re2.compile(("(?m)" + body).encode("utf-8"), options)
        with self._lock:
            self._scanners[live] = scanner
            if len(self._scanners) > 16:  # each holds its own DFA memory
                self._scanners.popitem(last=False)
        return scanner

    def matches(self, line: str | bytes) -> list[int]:
        """Indexes of every rule whose pattern matches the cleaned line, in rule order (one RE2 set match)."""
        found = self._set.Match(line.encode("utf-8") if isinstance(line, str) else line)
        return sorted(found) if found else []

    def classify(self, line: str | bytes) -> int | None:
        """Index of the first rule (in order) whose pattern matches the cleaned line, or None."""
        found = self._set.Match(line.encode("utf-8") if isinstance(line, str) else line)
        return min(found) if found else None


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # errors become RulesError; RE2's own logging would only spam stderr
    return options


def _compile(pattern: str):
    return re2.compile(pattern, _options())


def _flagged(rule: Rule) -> str:
    return f"(?i:{rule.pattern})" if rule.ignore_case else rule.pattern


_NAMED_GROUP = re.compile(r"\(\?P?<[A-Za-z_]\w*>")


def _anchor_after_timestamp(pattern: str) -> str:
    """`pattern` for the block scan: each `^` (outside classes and escapes) also matches after a line's timestamp,
    and no group captures."""
    out, i, n, in_class = [], 0, len(pattern), False
    while i < n:
        ch = pattern[i]
        if ch == "\\":
            if pattern.startswith("\\Q", i):  # quoted literal text up to \E
                end = pattern.find("\\E", i + 2)
                end = n if end < 0 else end + 2
                out.append(pattern[i:end])
                i = end
                continue
            out.append(pattern[i:i + 2])
            i += 2
            continue
        if in_class:
            if ch == "]":
                in_class = False
            elif pattern.startswith("[:", i):  # [[:alpha:]] inside a class
                end = pattern.find(":]", i + 2)
                if end >= 0:
                    out.append(pattern[i:end + 2])
                    i = end + 2
                    continue
            out.append(ch)
            i += 1
            continue
        if ch == "[":
            in_class = True
            j = i + 1
            if j < n and pattern[j] == "^":
                j += 1
            if j < n and pattern[j] == "]":  # a leading ] is a literal
                j += 1
            out.append(pattern[i:j])
            i = j
            continue
        if ch == "(":  # groups become non-capturing: the scan needs no submatches, which RE2 finds slowly
            named = _NAMED_GROUP.match(pattern, i)
            if named:
                out.append("(?:")
                i = named.end()
                continue
            if not pattern.startswith("(?", i):
                out.append("(?:")
                i += 1
                continue
        out.append(f"(?:^(?:{TIMESTAMP})?)" if ch == "^" else ch)
        i += 1
    return "".join(out)


def _error_text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else exc
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


_ABSOLUTE = re.compile(r"(?<!\\)(?:\\\\)*\\[Az]")


def _parse(path: str, data: dict, builtin: bool) -> list[Rule]:
    allowed = {"rule"} if builtin else {"rule", "disable"}
    for key in data:
        if key not in allowed:
            raise RulesError(f"{path}: unknown top-level key {key!r} (allowed: {', '.join(sorted(allowed))})")
    raw = data.get("rule", [])
    if not isinstance(raw, list):
        raise RulesError(f"{path}: `rule` must be an array of tables ([[rule]])")
    rules = []
    for number, entry in enumerate(raw, 1):
        where = f"{path}: rule {number}"
        if not isinstance(entry, dict):
            raise RulesError(f"{where}: must be a table ([[rule]])")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise RulesError(f"{where}: needs a `name` (a non-empty string)")
        where = f"{path}: rule {number} ({name!r})"
        unknown = sorted(set(entry) - KEYS)
        if unknown:
            raise RulesError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(KEYS))})")
        for key in ("fallback", "ignore_case", "last", "ignore"):
            if not isinstance(entry.get(key, False), bool):
                raise RulesError(f"{where}: `{key}` must be true or false")
        ignore = entry.get("ignore", False)
        klass = entry.get("class", "unknown" if ignore else None)
        if klass not in CLASSES:
            raise RulesError(f"{where}: `class` must be one of {', '.join(CLASSES)}, not {klass!r}")
        pattern = entry.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise RulesError(f"{where}: needs a `pattern` (a non-empty RE2 regular expression)")
        scope = entry.get("scope", "")
        if scope not in SCOPES:
            raise RulesError(f"{where}: `scope` must be \"job\" or absent, not {scope!r}")
        capture = entry.get("capture")
        if capture is not None and not isinstance(capture, str):
            raise RulesError(f"{where}: `capture` must be the name of a named group")
        rule = Rule(name=name, klass=klass, pattern=pattern, capture=capture, fallback=entry.get("fallback", False),
                    scope=scope, ignore_case=entry.get("ignore_case", False), last=entry.get("last", False),
                    ignore=ignore, origin=path)
        _check_pattern(where, rule)
        rules.append(rule)
    return rules


def _check_pattern(where: str, rule: Rule) -> None:
    if _ABSOLUTE.search(rule.pattern):
        raise RulesError(f"{where}: use ^ and $ rather than \\A or \\z (a pattern is matched against one line)")
    try:
        regex = _compile(_flagged(rule))
        _compile(_anchor_after_timestamp(_flagged(rule)))
    except re2.error as exc:
        raise RulesError(f"{where}: bad pattern {rule.pattern!r}: {_error_text(exc)}") from None
    if rule.capture is not None and rule.capture not in regex.groupindex:
        raise RulesError(f"{where}: `capture` names group {rule.capture!r}, which the pattern does not have "
                         f"(write (?P<{rule.capture}>...))")
    if regex.search("") is not None:
        raise RulesError(f"{where}: pattern {rule.pattern!r} matches an empty line, so it would match every line")


def _read(path: str, builtin: bool) -> dict:
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise RulesError(f"{path}: no such file") from None
    except OSError as exc:
        raise RulesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{path}: not valid TOML: {exc}") from None


def load(path: str | None = None) -> Rules:
    """The user's rules (if `path`) followed by the built-in rules that the user's `disable` leaves on."""
    builtin = _parse(BUILTIN, _read(BUILTIN, True), True)
    _unique(BUILTIN, builtin, {})
    if not path:
        return Rules(builtin)
    data = _read(path, False)
    user = _parse(path, data, False)
    disable = data.get("disable", [])
    if not isinstance(disable, list) or not all(isinstance(name, str) for name in disable):
        raise RulesError(f"{path}: `disable` must be a list of rule names")
    known = {rule.name for rule in builtin}
    for name in disable:
        if name not in known:
            raise RulesError(f"{path}: `disable` names {name!r}, which is not a built-in rule")
    kept = [rule for rule in builtin if rule.name not in set(disable)]
    _unique(path, user, {rule.name for rule in kept})
    return Rules(user + kept)


def _unique(path: str, rules: list[Rule], builtin_names: set) -> None:
    first: dict[str, int] = {}
    for number, rule in enumerate(rules, 1):
        where = f"{path}: rule {number} ({rule.name!r})"
        if rule.name in first:
            raise RulesError(f"{where}: duplicate name: rule {first[rule.name]} has it too")
        if rule.name in builtin_names:
            raise RulesError(f"{where}: duplicate name: a built-in rule has it (add it to `disable` to replace it)")
        first[rule.name] = number
