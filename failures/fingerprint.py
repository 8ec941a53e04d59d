"""A failure line's fingerprint: the same cause gives the same 16 hex digits in every run, branch and repository.

`normalise` erases what changes between two occurrences of one cause (timestamps, durations, ids, temporary and
workspace paths, line numbers, numbers inside otherwise equal text) and keeps what tells causes apart (test
names, error codes such as TS2322 or E0308, messages).  The input is one failure line of at most a few hundred
characters, so these are stdlib regexes (no user input reaches them as a pattern).
"""
import hashlib
import re

MAX_CHARS = 1000  # failure lines are at most 500 characters; the cap keeps these regexes cheap on anything longer
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Workflow-command prefixes: an `::error::` line and the same text in GitHub's log (`##[error]`) are one cause.
_COMMAND = re.compile(r"^(?:##\[(?:error|warning|notice)\]|::(?:error|warning|notice)(?: [^:]*)?::)\s*")

_ISO = re.compile(r"\b\d{4}-\d\d-\d\d(?:[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)?(?![\w-])")
_CLOCK = re.compile(r"\b\d\d?:\d\d:\d\d(?:[.,]\d+)?\b")
_UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
_HEX0X = re.compile(r"\b0x[0-9a-fA-F]+\b")
# 7+ hex digits with at least one digit: commit SHAs, digests, object ids; "deadbeefed"-like words stay.
_HEXID = re.compile(r"(?<![\w.-])(?=[a-fA-F]*\d)[0-9a-fA-F]{7,}(?![\w-])")
# Long random tokens of lower-case letters and digits (BuildKit refs, session ids); words and names stay.
_RANDOM = re.compile(r"(?<![\w-])(?=[a-z]*\d)(?=\d*[a-z])[a-z0-9]{20,}(?![\w-])")
# Numbers that name a cause rather than vary with the run: "exit code 137" (killed) is not "exit code 1".
_STATUS = re.compile(r"(?i)\b((?:exit|status|return|error|signal)(?: code| status| value)?:? ?)(\d+)\b")

# Temporary directories first (/home/runner/work/_temp is not a repository): everything up to the file's own
# name goes, since random directory names live there.
_TEMP = re.compile(
    r"(?:(?:/private)?/var/folders/|/tmp/|/home/runner/work/_temp/|/Users/runner/work/_temp/|/__w/_temp/"
    r"|[A-Za-z]:\\Users\\[^\\\s]+\\AppData\\Local\\Temp\\|[A-Za-z]:\\a\\_temp\\)"
    r"(?:[^\s'\"]*[/\\])?")
# Workspace roots: GitHub-hosted Linux / macOS / Windows, container jobs (/__w) and self-hosted (_work).
_WORKSPACE = re.compile(
    r"(?:/home/runner/work|/Users/runner/work|/__w)/[^/\s]+/[^/\s]+/"
    r"|[A-Za-z]:\\(?:a|actions-runner\\_work)\\[^\\\s]+\\[^\\\s]+\\")
_SELF_HOSTED = re.compile(r"/(?:[\w.-]+/)*?_work/[^/\s]+/[^/\s]+/")  # only tried when "/_work/" is there
# A Windows path separator between name characters: one cause on Windows and Linux runners is one cause.
_BACKSLASH = re.compile(r"(?<=[\w.-])\\(?=[\w.-])")
_FILE_POS = re.compile(r"(\.[A-Za-z]\w*):\d+(?::\d+)?")  # x.py:123:45 -> x.py:N:N
_PAREN_POS = re.compile(r"(\.[A-Za-z]\w*)\(\d+,\d+\)")  # x.ts(3,7) -> x.ts(N,N)
_BRACKET_POS = re.compile(r"(\.[A-Za-z]\w*):\[\d+,\d+\]")  # X.java:[12,5] -> X.java:[N,N]
_DURATION = re.compile(
    r"\[\s*\d+(?:\.\d+)?m?s\s*\]"  # nextest [ 0.123s]
    r"|\(\s*\d+(?:\.\d+)?\s*(?:seconds?|secs?|s|ms)\s*\)"  # (0.01 seconds), (0.00s)
    r"|\b(?:\d+h)?\d+m\d+(?:\.\d+)?s\b"  # 3m2s, 1h2m3.5s
    r"|\b\d+(?:\.\d+)?\s?(?:ms|µs|us|ns|s|sec|secs|seconds?|m|mins?|minutes?)\b")
_NUMBER = re.compile(r"(?<![A-Za-z0-9_#])[-+]?\d+(?:[.,]\d+)*(?![A-Za-z0-9_])")
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """The part of a failure line that names its cause (see the module docstring)."""
    text = text[:MAX_CHARS]
    text = _CONTROL.sub("", _ANSI.sub("", text)).strip()
    text = _COMMAND.sub("", text)
    text = _UUID.sub("<uuid>", text)
    text = _ISO.sub("<time>", text)
    text = _CLOCK.sub("<time>", text)
    text = _TEMP.sub("<tmp>/", text)
    text = _WORKSPACE.sub("", text)
    if "/_work/" in text:
        text = _SELF_HOSTED.sub("", text)
    text = _BACKSLASH.sub("/", text)
    text = _HEX0X.sub("0x<hex>", text)
    text = _HEXID.sub("<hex>", text)
    text = _RANDOM.sub("<id>", text)
    text = _BRACKET_POS.sub(r"\1:[N,N]", text)
    text = _PAREN_POS.sub(r"\1(N,N)", text)
    text = _FILE_POS.sub(lambda m: m.group(1) + (":N:N" if m.group(0).count(":") == 2 else ":N"), text)
    text = _DURATION.sub("<dur>", text)
    text = _STATUS.sub(r"\1#\2", text)
    text = _NUMBER.sub("N", text)
    return _SPACE.sub(" ", text).strip()


def fingerprint(text: str, scope: str = "") -> str:
    """16 hex digits naming a failure line's cause; `scope` (a job's identity) keeps fallback lines per job."""
    key = normalise(text)
    if scope:
        key += "\x1f" + scope
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:16]
