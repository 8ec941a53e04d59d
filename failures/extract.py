"""From a failed job's log (streamed, any size) and its annotations to its failure lines and a short excerpt.

`Extractor.feed` takes the log in chunks of any size and never keeps it whole: complete lines are processed in
blocks of about 1 MB.  One combined RE2 regex (`Rules.scanner`) finds the few candidate lines of a block; each is
classified by the first rule in order that matches it (`Rules.matches`), and only the candidates that can still
be selected are kept, each with `context` lines either side, plus the log's last `tail` lines.  Rules whose
further lines could no longer be selected (enough lines of their own, ranked below MAX_LINES others, fallbacks
once a real failure line is found, MAX_HITS matches) leave the combined regex, so a log full of error lines
costs about what a quiet one does.  Lines longer than MAX_LINE_BYTES are cut there.

Selection (`finish`): the failure lines are the lines of non-fallback rules, ranked by (rule order, position),
one per fingerprint, at most MAX_LINES; the first is the primary.  Without any, the fallback lines: failure
annotations no rule explains first, then the fallback rules in order (a `last` rule, such as the exit code, by
its last occurrence).

Truncation: with `max_bytes`, `feed` reads at most that many bytes of log, then returns False (the caller
should stop reading) and the extraction is marked truncated.  A caller that stops for its own reasons (a time
limit, a dropped connection) says so with `finish(..., truncated=True)`.
"""
import re
from collections import deque
from dataclasses import dataclass, field

from failures import Extraction, FailureLine
from failures.fingerprint import fingerprint

MAX_LINES = 10  # failure lines kept per job
BLOCK = 1 << 20  # bytes of complete lines processed at once
MAX_LINE_BYTES = 64 << 10  # a longer line is cut there (a minified bundle or a progress bar without newlines)
MAX_TEXT = 500  # characters of a failure line
MAX_EXCERPT_LINE = 1000  # characters of a line in the excerpt
KEEP_PER_RULE = 2 * MAX_LINES  # distinct lines kept per rule: enough to fill MAX_LINES after cross-rule duplicates
MAX_CANDIDATES = 500  # hard bound on kept candidates, whatever the rules
# After this many matching lines a rule is no longer looked for: its first lines are the ones selection ranks
# first anyway, and a log of a million identical error lines must not cost a million classifications.
MAX_HITS = 200
MAX_IGNORED_HITS = 1000  # the same for noise lines an ignore rule claims (their hits count towards this cap)

_TIMESTAMP = re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ?")
_ANSI = re.compile(rb"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MATRIX = re.compile(r"\s*\([^()]*\)\s*$")
_BOM = b"\xef\xbb\xbf"


def base_name(job_name: str) -> str:
    """The job a matrix leg belongs to: "test (ubuntu-latest, 3.11)" -> "test".

    The parenthesised group at the end of the name (GitHub's matrix values) goes; a name that is nothing but such
    a group ("(linux)") stays whole, since removing it would leave no name at all.
    """
    name = job_name or ""
    return _MATRIX.sub("", name) or name


def job_scope(repo: str, workflow: str, job_name: str) -> str:
    """A job's identity for fingerprints of fallback rules: every leg of a matrix job shares it (`base_name`)."""
    return f"{repo}\x1f{workflow}\x1f{base_name(job_name)}"


def _display(text: str, limit: int) -> str:
    """Text without control characters (a tab becomes a space), at most `limit` characters."""
    text = _CONTROL.sub("", text.replace("\t", " ")).strip()
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _clean(raw: bytes) -> bytes:
    """A raw log line (ANSI already gone) without GitHub's timestamp prefix."""
    m = _TIMESTAMP.match(raw)
    return raw[m.end():] if m else raw


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


@dataclass
class _Candidate:
    rule: int
    line: int  # 1-based line number in the log
    raw: str  # the cleaned line, for the excerpt
    text: str  # the failure line
    fingerprint: str
    before: list = field(default_factory=list)  # (line number, text) of the lines before it
    after: list = field(default_factory=list)
    missing: int = 0  # lines after it still to come from the next block


class Extractor:
    def __init__(self, rules, *, max_bytes: int | None = None, context: int = 3, tail: int = 20):
        self.rules = rules
        self.max_bytes = max_bytes
        self.context = context
        self.log_bytes = 0
        self.truncated = False
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._long_head: bytes | None = None  # the kept start of an over-long line whose end has not come yet
        self._started = False
        self._lines = 0  # complete lines processed
        self._previous: deque = deque(maxlen=max(context, 0))  # last lines of earlier blocks
        self._tail: deque = deque(maxlen=tail)
        self._waiting: list[_Candidate] = []
        self._kept: dict[int, list[_Candidate]] = {}  # rule index -> candidates in log order
        self._fingerprints: dict[int, set] = {}
        self._limit = len(rules.rules)  # candidates of later non-fallback rules can no longer be selected
        self._any_strong = False  # a non-fallback rule matched: fallback lines are no longer needed
        self._count = 0
        self._hits = [0] * len(rules.rules)  # lines each rule classified
        self._ignored = [0] * len(rules.rules)  # noise lines each rule also matched
        self._fp_cache: dict[str, str] = {}
        self._dirty = False  # something changed that may narrow the rules still looked for
        self._live = frozenset(range(len(rules.rules)))
        self._scanner = rules.scanner(self._live)

    # ---- reading -------------------------------------------------------------------------------------------

    def feed(self, chunk: bytes | str) -> bool:
        """Take the next piece of the log; False once `max_bytes` is reached (the rest would be ignored)."""
        if isinstance(chunk, str):
            chunk = chunk.encode("utf-8")
        if self.max_bytes is not None:
            room = self.max_bytes - self.log_bytes
            if len(chunk) > room:
                chunk = chunk[:max(room, 0)]
                self.truncated = True
        if chunk:
            self.log_bytes += len(chunk)
            self._pending.append(chunk)
            self._pending_bytes += len(chunk)
            if self._pending_bytes >= BLOCK:
                self._drain(final=False)
        return not self.truncated

    def _drain(self, final: bool) -> None:
        data = b"".join(self._pending)
        self._pending, self._pending_bytes = [], 0
        if not self._started and data:
            self._started = True
            if data.startswith(_BOM):
                data = data[len(_BOM):]
        if self._long_head is not None:  # drop the rest of an over-long line, up to its end
            end = data.find(b"\n")
            if end < 0 and not final:
                return
            data = self._long_head + (b"\n" + data[end + 1:] if end >= 0 else b"")
            self._long_head = None
        cut = len(data) if final else data.rfind(b"\n") + 1
        rest = data[cut:]
        if len(rest) > MAX_LINE_BYTES:
            self._long_head, rest = rest[:MAX_LINE_BYTES], b""
        if rest:
            self._pending, self._pending_bytes = [rest], len(rest)
        block = data[:cut]
        if block:
            if not block.endswith(b"\n"):
                block += b"\n"
            self._block(block)

    def _block(self, data: bytes) -> None:
        """Process complete lines (`data` ends with a newline)."""
        if b"\r" in data:
            data = data.replace(b"\r\n", b"\n")
        if b"\x1b" in data:
            data = _ANSI.sub(b"", data)
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:  # RE2 and the rules see what a reader sees: U+FFFD for bad bytes
            data = data.decode("utf-8", "replace").encode("utf-8")
        base = self._lines  # lines before this block
        if self._waiting:
            self._fill_after(data, base)
        counted_at, counted = 0, 0  # newlines in data[:counted_at]
        pos, size = 0, len(data)
        while pos < size and self._scanner is not None:
            m = self._scanner.search(data, pos)
            if m is None:
                break
            start, end = m.span()
            line_start = data.rfind(b"\n", 0, start) + 1
            line_end = data.find(b"\n", max(end - 1, start))
            if line_end < 0:
                line_end = size
            counted += data.count(b"\n", counted_at, line_start)
            counted_at = line_start
            # A pattern with \s may span lines: each line of the span is checked on its own.
            at = line_start
            while at <= line_end and at < size:
                stop = data.find(b"\n", at)
                stop = size if stop < 0 else stop
                self._candidate(data, at, stop, base + counted + 1)
                counted += 1
                at = stop + 1
            counted_at = at
            pos = at
            if self._dirty:
                self._narrow()
        self._lines = base + data.count(b"\n")
        self._remember(data)

    def _candidate(self, data: bytes, start: int, stop: int, number: int) -> None:
        # Cut like a line that straddles blocks (_drain), so the result does not depend on how the log was chunked.
        line = _clean(data[start:min(stop, start + MAX_LINE_BYTES)])
        found = self.rules.matches(line)
        if not found:
            return
        index = found[0]
        rule = self.rules.rules[index]
        if rule.ignore:
            # Noise (retries, warnings) that also matches a rule being looked for: after many such lines that
            # rule stops being looked for, so a log of a million retries stays cheap.
            for other in found[1:]:
                if other in self._live:
                    self._ignored[other] += 1
                    if self._ignored[other] == MAX_IGNORED_HITS:
                        self._dirty = True
            return
        self._hits[index] += 1
        if self._hits[index] == MAX_HITS:
            self._dirty = True
        if rule.fallback:
            if self._any_strong:
                return
        elif index > self._limit:
            return
        kept = self._kept.setdefault(index, [])
        if not rule.last and len(kept) >= KEEP_PER_RULE:
            return
        if self._count >= MAX_CANDIDATES and not (rule.last and kept):
            return
        raw = _decode(line)
        text = self._text(index, raw)
        fp = self._fp_cache.get(text)
        if fp is None:
            # Within one log the job scope is constant, so the unscoped fingerprint de-duplicates as well; lines
            # are fingerprinted with their scope at finish.
            fp = fingerprint(text)
            if len(self._fp_cache) < 4096:
                self._fp_cache[text] = fp
        seen = self._fingerprints.setdefault(index, set())
        if fp in seen and not rule.last:
            return
        candidate = _Candidate(index, number, _display(raw, MAX_EXCERPT_LINE), text, fp)
        self._context(candidate, data, start, stop, number)
        if rule.last and kept:
            self._drop(kept[0])
            kept.clear()
            seen.clear()
        kept.append(candidate)
        seen.add(fp)
        self._count += 1
        self._dirty = True
        if not rule.fallback:
            self._strong_added()

    def _narrow(self) -> None:
        """Stop looking for rules whose further lines can no longer be selected (see Rules.scanner)."""
        live = []
        for index, rule in enumerate(self.rules.rules):
            if rule.ignore:
                continue
            kept = len(self._kept.get(index, ()))
            hits = self._hits[index] if self._ignored[index] < MAX_IGNORED_HITS else MAX_HITS
            if rule.fallback:
                if self._any_strong or (not rule.last and (kept >= KEEP_PER_RULE or hits >= MAX_HITS)):
                    continue
            elif index > self._limit or kept >= KEEP_PER_RULE or hits >= MAX_HITS:
                continue
            live.append(index)
        live = frozenset(live)
        self._dirty = False
        if live != self._live:
            self._live = live
            self._scanner = self.rules.scanner(live)

    def _text(self, index: int, raw: str) -> str:
        rule = self.rules.rules[index]
        text = None
        if rule.capture:
            m = self.rules.regexes[index].search(raw)
            text = m.group(rule.capture) if m else None
        return _display(text if text else raw, MAX_TEXT)

    def _strong_added(self) -> None:
        if not self._any_strong:
            self._any_strong = True
            for index in [i for i in self._kept if self.rules.rules[i].fallback]:
                for candidate in self._kept.pop(index):
                    self._drop(candidate)
                self._fingerprints.pop(index, None)
        # Once MAX_LINES distinct lines come from rules up to some rule, later rules can never be selected.
        union: set = set()
        for index in sorted(self._kept):
            if index > self._limit:
                break
            union |= self._fingerprints.get(index, set())
            if len(union) >= MAX_LINES:
                self._limit = index
                for later in [i for i in self._kept if i > index and not self.rules.rules[i].fallback]:
                    for candidate in self._kept.pop(later):
                        self._drop(candidate)
                    self._fingerprints.pop(later, None)
                break

    def _drop(self, candidate: _Candidate) -> None:
        self._count -= 1
        if candidate.missing:
            self._waiting.remove(candidate)

    def _context(self, candidate: _Candidate, data: bytes, start: int, stop: int, number: int) -> None:
        before, at = [], start
        while len(before) < self.context and at > 0:
            prev = data.rfind(b"\n", 0, at - 1) + 1
            before.append(data[prev:at - 1])
            at = prev
        before.reverse()
        lines = [(number - len(before) + i, self._shown(raw)) for i, raw in enumerate(before)]
        if len(before) < self.context and at == 0:
            need = self.context - len(before)
            lines = [item for item in self._previous if item[0] >= number - len(before) - need] + lines
        candidate.before = lines
        after, at = [], stop + 1
        while len(after) < self.context and at < len(data):
            nxt = data.find(b"\n", at)
            nxt = len(data) if nxt < 0 else nxt
            after.append((number + len(after) + 1, self._shown(data[at:nxt])))
            at = nxt + 1
        candidate.after = after
        candidate.missing = self.context - len(after)
        if candidate.missing:
            self._waiting.append(candidate)

    def _fill_after(self, data: bytes, base: int) -> None:
        need = max(c.missing for c in self._waiting)
        lines, at = [], 0
        while len(lines) < need and at < len(data):
            nxt = data.find(b"\n", at)
            nxt = len(data) if nxt < 0 else nxt
            lines.append((base + len(lines) + 1, self._shown(data[at:nxt])))
            at = nxt + 1
        for candidate in self._waiting:
            take = lines[:candidate.missing]
            candidate.after.extend(take)
            candidate.missing -= len(take)
        self._waiting = [c for c in self._waiting if c.missing]

    def _remember(self, data: bytes) -> None:
        """Keep the block's last lines: the context before the next block's first lines, and the log's tail."""
        want = max(self._tail.maxlen or 0, self.context)
        lines, end = [], len(data) - 1  # data[end] is the final newline
        while len(lines) < want and end >= 0:
            start = data.rfind(b"\n", 0, end) + 1
            lines.append(data[start:end])
            end = start - 1
        total = self._lines
        items = [(total - i, self._shown(raw)) for i, raw in enumerate(lines)]
        items.reverse()
        self._tail.extend(items)
        if self.context:
            self._previous.extend(items[-self.context:])

    @staticmethod
    def _shown(raw: bytes) -> str:
        return _display(_decode(_clean(raw)), MAX_EXCERPT_LINE)

    # ---- selection ----------------------------------------------------------------------------------------

    def finish(self, annotations=(), job_scope: str = "", truncated: bool = False) -> Extraction:
        """The failure lines and excerpt of everything fed (see the module docstring for `truncated`)."""
        self._drain(final=True)
        rules = self.rules.rules
        strong, weak = [], []  # (rank, FailureLine, candidate or None)
        for index, kept in self._kept.items():
            rule = rules[index]
            for candidate in kept:
                scope = job_scope if rule.scope == "job" else ""
                line = FailureLine(rule=rule.name, klass=rule.klass, text=candidate.text,
                                   fingerprint=fingerprint(candidate.text, scope), line=candidate.line,
                                   source="log", path=None, fallback=rule.fallback)
                (weak if rule.fallback else strong).append(((index, 0, candidate.line), line, candidate))
        for n, annotation in enumerate(annotations or ()):
            line, index = self._annotation(annotation, job_scope)
            if line is None:
                continue
            if line.fallback:
                weak.append(((-1 if index is None else index, 1, n), line, None))
            else:
                strong.append(((index, 1, n), line, None))
        chosen = _select(strong) or _select(weak)
        return Extraction(lines=[line for line, _ in chosen], excerpt=self._excerpt([c for _, c in chosen if c]),
                          log_bytes=self.log_bytes, truncated=self.truncated or bool(truncated))

    def _annotation(self, annotation: dict, job_scope: str):
        if (annotation.get("annotation_level") or "") != "failure":
            return None, None
        message = (annotation.get("message") or "").strip() or (annotation.get("title") or "").strip()
        if not message:
            return None, None
        first = _display(message.splitlines()[0], MAX_EXCERPT_LINE)
        index = self.rules.classify(first)
        path, start = annotation.get("path") or None, annotation.get("start_line")
        start = start if isinstance(start, int) else None
        rule = None if index is None else self.rules.rules[index]
        if rule is None or rule.ignore or (rule.fallback and not rule.last):
            # GitHub already says this is a failure: its own words beat the log's error-ish lines.
            text = _display(first, MAX_TEXT)
            return FailureLine(rule="annotation", klass="unknown", text=text, fingerprint=fingerprint(text, job_scope),
                               line=start, source="annotation", path=path, fallback=True), None
        text = self._text(index, first)
        return FailureLine(rule=rule.name, klass=rule.klass, text=text,
                           fingerprint=fingerprint(text, job_scope if rule.scope == "job" else ""),
                           line=start, source="annotation", path=path, fallback=rule.fallback), index

    def _excerpt(self, candidates: list) -> str:
        lines: dict[int, str] = dict(self._tail)
        for candidate in candidates:
            lines.update(candidate.before)
            lines[candidate.line] = candidate.raw
            lines.update(candidate.after)
        out, previous = [], None
        for number in sorted(lines):
            if previous is not None and number > previous + 1:
                out.append("…")
            out.append(lines[number])
            previous = number
        return "\n".join(out)


def _select(entries: list) -> list:
    """At most MAX_LINES (FailureLine, candidate) by rank, one per fingerprint."""
    chosen, seen = [], set()
    for _, line, candidate in sorted(entries, key=lambda entry: entry[0]):
        if line.fingerprint in seen:
            continue
        seen.add(line.fingerprint)
        chosen.append((line, candidate))
        if len(chosen) == MAX_LINES:
            break
    return chosen


def extract(text: str | bytes, rules, annotations=(), job_scope: str = "") -> Extraction:
    """One-shot extraction of a whole log."""
    extractor = Extractor(rules)
    extractor.feed(text)
    return extractor.finish(annotations, job_scope)
