"""Extraction: streaming (chunk boundaries, CRLF, UTF-8, bounded memory), selection, annotations, truncation,
and fingerprint normalisation."""
import random
import tracemalloc
from pathlib import Path

import pytest

from failures import extract as extract_module
from failures.extract import MAX_LINES, Extractor, base_name, extract, job_scope
from failures.fingerprint import fingerprint, normalise
from failures.rules import load

LOGS = Path(__file__).parent / "fixtures" / "logs"
SCOPE = job_scope("acme/app", "CI", "test (ubuntu-latest, 3.11)")


@pytest.fixture(scope="module")
def rules():
    return load()


def gh(*lines: str, start: int = 0) -> str:
    """Lines as GitHub stores them: each behind its timestamp."""
    return "".join(f"2024-03-01T10:{(start + i) // 60 % 60:02d}:{(start + i) % 60:02d}.{i:07d}Z {line}\n"
                   for i, line in enumerate(lines))


def fed(rules, data: bytes, sizes, **kwargs):
    extractor = Extractor(rules, **kwargs)
    i = 0
    for size in sizes:
        if i >= len(data):
            break
        extractor.feed(data[i:i + size])
        i += size
    if i < len(data):
        extractor.feed(data[i:])
    return extractor


# ---- streaming ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["rustc/rustc-e0308-2.log", "jest/jest-button-label-2.log",
                                  "oom/oom-killed-training-1.log", "exit-code/exit-smoke-script-1.log"])
def test_byte_by_byte_gives_the_same_extraction(rules, name, monkeypatch):
    data = (LOGS / name).read_bytes()
    whole = extract(data, rules, job_scope=SCOPE)
    assert whole.lines
    assert fed(rules, data, [1] * len(data)).finish(job_scope=SCOPE) == whole
    # Tiny blocks: context lines, the tail and after-context cross block boundaries in every way.
    monkeypatch.setattr(extract_module, "BLOCK", 200)
    rng = random.Random(7)
    for _ in range(5):
        sizes = [rng.randint(1, 700) for _ in range(len(data))]
        assert fed(rules, data, sizes).finish(job_scope=SCOPE) == whole


def test_crlf_lines_are_the_same_lines(rules):
    text = gh("Run make", "src/a.c:3:5: error: 'x' undeclared", "make: *** [Makefile:2: all] Error 1",
              "##[error]Process completed with exit code 2.")
    lf = extract(text, rules, job_scope=SCOPE)
    crlf = fed(rules, text.replace("\n", "\r\n").encode(), [3] * 1000).finish(job_scope=SCOPE)
    assert [line.text for line in crlf.lines] == [line.text for line in lf.lines]
    assert crlf.lines == lf.lines and crlf.excerpt == lf.excerpt
    assert "\r" not in crlf.excerpt


def test_utf8_split_across_chunks(rules):
    data = gh("Run npx jest", "  ● Cart › totals the prices in € for Łódź 日本", "done").encode()
    expected = extract(data, rules)
    assert expected.lines[0].text == "● Cart › totals the prices in € for Łódź 日本"
    for cut in range(1, len(data)):  # every place a multi-byte character can be split
        got = fed(rules, data, [cut, len(data)]).finish()
        assert got.lines[0].text == expected.lines[0].text


def test_invalid_utf8_becomes_replacement_characters(rules):
    data = b"2024-03-01T10:00:00.0000000Z src/a.c:1:1: error: bad byte \xff here\n"
    line = extract(data, rules).lines[0]
    assert line.rule == "gcc" and line.text == "src/a.c:1:1: error: bad byte \ufffd here"


def test_a_50_mb_log_of_error_lines_keeps_memory_and_output_bounded(rules):
    kinds = ["src/mod{0}.c:{0}:5: error: 'v{0}' undeclared", "FAILED tests/test_{0}.py::test_case - assert {0} == 1",
             "ERROR: step {0} failed", "read tcp 10.0.0.{0}:443: connection reset by peer",
             "Retrying in {0} seconds: connection reset by peer", "##[error]Process completed with exit code 1."]
    lines = [kinds[i % len(kinds)].format(i) for i in range(12000)]
    chunk = gh(*lines).encode()
    extractor = Extractor(rules)
    tracemalloc.start()
    try:
        fed_bytes = 0
        while fed_bytes < 50_000_000:
            for i in range(0, len(chunk), 1 << 20):
                extractor.feed(chunk[i:i + (1 << 20)])
            fed_bytes += len(chunk)
        extraction = extractor.finish(job_scope=SCOPE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert extraction.log_bytes == fed_bytes and not extraction.truncated
    assert peak < 12_000_000, peak  # the blocks in flight and the kept candidates, not the 50 MB
    assert len(extraction.lines) == MAX_LINES
    assert len(extraction.excerpt) < 20_000
    assert extraction.lines[0].rule == "connection-reset"  # infra ranks first; the retries are noise
    assert extractor._count <= extract_module.MAX_CANDIDATES


def test_an_endless_line_is_cut_and_the_next_line_still_counts(rules):
    long = "2024-03-01T10:00:00.0000000Z " + "x" * 300_000 + " error: lost in the noise\n"
    data = (gh("Run build") + long + gh("src/a.c:9:1: error: after the long line")).encode()
    for sizes in ([len(data)], [4096] * 100):
        extraction = fed(rules, data, sizes).finish()
        assert [(line.text, line.line) for line in extraction.lines] == [
            ("src/a.c:9:1: error: after the long line", 3)]
        assert max(len(line) for line in extraction.excerpt.split("\n")) <= extract_module.MAX_EXCERPT_LINE


# ---- selection ------------------------------------------------------------------------------------------------

def test_rule_order_beats_position_and_lines_are_one_per_fingerprint(rules):
    text = gh("##[group]Run pytest", "FAILED tests/test_a.py::test_one - assert 1 == 2",
              "FAILED tests/test_a.py::test_one - assert 3 == 2",  # the same cause: numbers differ only
              "FAILED tests/test_b.py::test_two - KeyError: 'x'",
              "npm ERR! network request failed, reason: read ECONNRESET",
              "##[error]Process completed with exit code 1.")
    extraction = extract(text, rules, job_scope=SCOPE)
    assert [(line.rule, line.klass, line.line) for line in extraction.lines] == [
        ("connection-reset", "infra", 5), ("pytest", "test", 2), ("pytest", "test", 4)]
    assert all(not line.fallback and line.source == "log" for line in extraction.lines)


def test_at_most_max_lines(rules):
    text = gh(*[f"FAILED tests/test_{name}.py::test_{name}" for name in "abcdefghijklmnop"])
    extraction = extract(text, rules)
    assert len(extraction.lines) == MAX_LINES
    assert extraction.lines[0].text == "FAILED tests/test_a.py::test_a"


def test_fallbacks_only_without_a_real_failure_line(rules):
    text = gh("Run ./deploy.sh", "Deploying", "error: something odd", "##[error]Process completed with exit code 3.",
              "Run cleanup", "##[error]Process completed with exit code 4.", "Post job cleanup.")
    extraction = extract(text, rules, job_scope=SCOPE)
    primary = extraction.lines[0]
    # "error: ..." is a real (tool-error) line here; without it the exit code is the primary.
    assert (primary.rule, primary.fallback) == ("tool-error", False)
    text = text.replace("error: something odd", "something odd")
    extraction = extract(text, rules, job_scope=SCOPE)
    primary = extraction.lines[0]
    assert (primary.rule, primary.klass, primary.fallback) == ("exit-code", "unknown", True)
    assert primary.text == "Process completed with exit code 4" and primary.line == 6  # the last one
    assert primary.fingerprint == fingerprint(primary.text, SCOPE)
    assert primary.fingerprint != fingerprint(primary.text, job_scope("acme/app", "CI", "lint"))


def primary(rules, *lines):
    line = extract(gh(*lines), rules, job_scope=SCOPE).lines[0]
    return line.rule, line.klass


def test_the_runner_shutdown_beats_the_cancellation_that_follows_it(rules):
    assert primary(rules, "##[error]The runner has received a shutdown signal. This can happen when the runner "
                   "service is stopped, or a manually started runner is canceled.",
                   "##[error]The operation was canceled.") == ("runner-shutdown", "infra")


def test_a_killed_jest_worker_is_out_of_memory_not_the_test_file_it_ran(rules):
    assert primary(rules, "FAIL src/reports/largeExport.test.ts", "  ● Test suite failed to run", "",
                   "    A jest worker process (pid=4242) was terminated by another process: signal=SIGKILL, "
                   "exitCode=null.") == ("oom-jest-worker", "infra")


def test_a_lint_violation_beats_the_gradle_task_that_reports_it(rules):
    task = ["> Task :app:detekt FAILED", "Execution failed for task ':app:detekt'."]
    assert primary(rules, "\tLongMethod - [syncAll] at /home/runner/work/m/m/app/Sync.kt:61:9", *task) == (
        "detekt", "lint")
    a = extract(gh("/home/runner/work/m/m/app/Login.kt:34:1 Needless blank line(s) "
                   "(standard:no-consecutive-blank-lines)", *task), rules).lines[0]
    b = extract(gh("/home/runner/work/m/m/app/Push.kt:7:1 Unused import (standard:no-unused-imports)", *task),
                rules).lines[0]
    assert a.rule == b.rule == "ktlint" and a.fingerprint != b.fingerprint


def test_an_xctest_assertion_is_a_test_failure_not_a_compiler_error(rules):
    assert primary(rules, "/Users/runner/work/m/m/AcmeTests/SyncTests.swift:88: error: -[AcmeTests.SyncTests "
                   "testSync] : Asynchronous wait failed: Exceeded timeout of 2 seconds",
                   "Test Case '-[AcmeTests.SyncTests testSync]' failed (2.013 seconds).") == ("xctest-failure", "test")


def test_the_specific_line_beats_a_tools_summary(rules):
    assert primary(rules, "x Build failed in 6.21s", "error during build:",
                   'src/pages/Export.tsx (3:9): "formatCsv" is not exported by "src/lib/csv.ts", imported by '
                   '"src/pages/Export.tsx".') == ("rollup", "build")
    assert primary(rules, "[warn] src/pages/Settings.tsx", "[warn] Code style issues found in the above file. Run "
                   "Prettier with --write to fix.") == ("prettier", "lint")
    assert primary(rules, "ERROR    HTTPError: 400 Bad Request from https://upload.pypi.org/legacy/",
                   "         File already exists ('a-1.0-py3-none-any.whl', with blake2_256 hash 'ab12'). See") == (
        "twine-file-exists", "build")
    assert primary(rules, '[10:01:02]: ERROR ITMS-90186: "Invalid Pre-Release Train."',
                   "[!] Error uploading ipa file, for more information see above") == ("app-store", "build")


def test_warnings_fail_a_build_only_when_nothing_else_explains_it(rules):
    warning = "  27:6  warning  React Hook useEffect has a missing dependency: 'onTick'  react-hooks/exhaustive-deps"
    summary = ["", "✖ 1 problem (0 errors, 1 warning)", "", "ESLint found too many warnings (maximum: 0)."]
    lines = extract(gh("src/hooks/usePolling.ts", warning, *summary), rules, job_scope=SCOPE).lines
    assert [line.rule for line in lines] == ["eslint-warning", "eslint-max-warnings", "eslint-summary-warnings"]
    # The same warning in a job that failed for another reason (the type check after the lint) is not the cause.
    assert primary(rules, warning, "src/config.ts(3,7): error TS2322: Type 'string' is not assignable to type "
                   "'number'.") == ("tsc", "build")
    assert primary(rules, warning, "##[error]Deployment quota exceeded for project acme-prod") == (
        "action-error", "unknown")
    sphinx = "/home/runner/work/a/a/docs/orders.rst:88: WARNING: undefined label: 'refund-states' [ref.ref]"
    assert primary(rules, sphinx, "build finished with problems, 1 warning (with warnings treated as errors).") == (
        "sphinx", "build")
    # Sphinx prints some warnings without a location; ignore-warnings must not hide them.
    assert primary(rules, "WARNING: autodoc: failed to import module 'search' from module 'acme_api'; the following "
                   "exception was raised:", "No module named 'opensearchpy' [autodoc.import_object]") == (
        "sphinx-autodoc", "build")


def test_linkcheck_tells_a_busy_site_from_a_broken_link(rules):
    busy = "(guides/deploy: line   17) broken    https://github.com/a/b/releases - 429 Client Error: Too Many " \
        "Requests for url: https://github.com/a/b/releases"
    gone = "(guides/deploy: line   17) broken    https://acme.dev/v1 - 404 Client Error: Not Found for url: " \
        "https://acme.dev/v1"
    assert primary(rules, busy, "build finished with problems.") == ("linkcheck-transient", "infra")
    assert primary(rules, gone, "build finished with problems.") == ("linkcheck-broken", "build")


def test_out_of_memory_and_simulator_failures_are_infra(rules):
    assert primary(rules, "Expiring Daemon because JVM heap space is exhausted", "FAILURE: Build failed with an "
                   "exception.", "Gradle build daemon disappeared unexpectedly (it may have been killed or may have "
                   "crashed)") == ("oom-gradle", "infra")
    assert primary(rules, "xcodebuild: error: Failed to prepare device 'iPhone 15' for testing.",
                   "\tUnderlying Error: Unable to boot the Simulator. launchd failed to respond.") == (
        "simulator", "infra")


def test_rsyncs_pid_and_temporary_name_do_not_split_the_fingerprint(rules):
    def line(pid, suffix):
        return extract(gh(f"error: Sandbox: rsync.samba({pid}) deny(1) file-write-create /Users/runner/Library/"
                          f"Developer/Xcode/DerivedData/Acme-x/Build/Products/A.framework/.A.{suffix}"), rules).lines[0]
    a, b = line(53876, "Xq3rT2"), line(811, "p0ZkLm")
    assert a.rule == "xcode-sandbox" and a.fingerprint == b.fingerprint


def test_catch_all_when_nothing_else(rules):
    extraction = extract(gh("Run x", "FATAL: database is locked", "bye"), rules, job_scope=SCOPE)
    assert [(line.rule, line.fallback, line.text) for line in extraction.lines] == [
        ("catch-all", True, "FATAL: database is locked")]
    assert extract(gh("all good", "nothing to see"), rules).lines == []


def test_excerpt_keeps_context_and_the_tail_with_gaps(rules):
    body = [f"noise {i}" for i in range(100)]
    body[40] = "src/x.c:1:1: error: boom"
    extraction = extract(gh(*body), rules, job_scope=SCOPE)
    shown = extraction.excerpt.split("\n")
    assert shown == ["noise 37", "noise 38", "noise 39", "src/x.c:1:1: error: boom", "noise 41", "noise 42",
                     "noise 43", "…"] + [f"noise {i}" for i in range(80, 100)]


def test_timestamps_ansi_and_bom_are_not_part_of_lines(rules):
    data = ("\ufeff" + gh("\x1b[1m\x1b[31merror[E0308]\x1b[0m\x1b[1m: mismatched types\x1b[0m")).encode()
    extraction = extract(data, rules)
    assert extraction.lines[0].text == "error[E0308]: mismatched types"
    assert extraction.excerpt == "error[E0308]: mismatched types"


# ---- annotations ----------------------------------------------------------------------------------------------

def test_annotations_are_classified_by_the_same_rules(rules):
    annotations = [
        {"annotation_level": "warning", "message": "Node.js 16 actions are deprecated.", "path": ".github"},
        {"annotation_level": "failure", "message": "src/index.ts(3,7): error TS2322: Type 'string' is not "
                                                   "assignable to type 'number'.\nmore text",
         "path": "src/index.ts", "start_line": 3, "title": ""},
    ]
    extraction = extract(gh("##[error]Process completed with exit code 2."), rules, annotations, SCOPE)
    primary = extraction.lines[0]
    assert (primary.rule, primary.klass, primary.source, primary.path, primary.line, primary.fallback) == (
        "tsc", "build", "annotation", "src/index.ts", 3, False)
    assert primary.text.endswith("type 'number'.") and len(extraction.lines) == 1


def test_an_unexplained_failure_annotation_ranks_before_the_exit_code(rules):
    annotations = [{"annotation_level": "failure", "message": "", "title": "Quality gate: 3 new issues",
                    "path": ".github", "start_line": 1},
                   {"annotation_level": "failure", "message": "Process completed with exit code 1.",
                    "path": ".github", "start_line": 12}]
    extraction = extract(gh("checking", "##[error]Process completed with exit code 1."), rules, annotations, SCOPE)
    assert [(line.rule, line.source, line.fallback) for line in extraction.lines] == [
        ("annotation", "annotation", True), ("exit-code", "log", True)]  # the exit-code annotation is the same
    assert extraction.lines[0].text == "Quality gate: 3 new issues"
    assert extraction.lines[0].fingerprint == fingerprint("Quality gate: 3 new issues", SCOPE)


# ---- truncation -------------------------------------------------------------------------------------------------

def test_max_bytes_stops_reading_and_marks_truncated(rules):
    head = gh("Run tests", "tests pass so far")
    data = (head + gh("FAILED tests/test_late.py::test_x - boom", start=2)).encode()
    extractor = Extractor(rules, max_bytes=len(head))
    assert extractor.feed(data[:len(head)]) is True  # exactly at the cap: nothing lost yet
    assert extractor.feed(data[len(head):]) is False  # the caller should stop reading
    extraction = extractor.finish()
    assert extraction.truncated and extraction.log_bytes == len(head) and extraction.lines == []
    whole = Extractor(rules)
    whole.feed(data)
    assert not whole.finish().truncated
    stopped = Extractor(rules)  # the reader stopped for its own reasons (time limit, connection dropped)
    stopped.feed(data)
    assert stopped.finish(truncated=True).truncated


@pytest.mark.parametrize("name, base", [
    ("test (ubuntu-latest, 3.11)", "test"), ("test", "test"), ("Build (release) (ubuntu)", "Build (release)"),
    ("call / build (x64)", "call / build"), ("test (a(b))", "test (a(b))"), ("test (x", "test (x"),
    ("test (x) y", "test (x) y"), ("(linux)", "(linux)"), (" (x) ", " (x) "), ("", ""), (None, ""),
])
def test_base_name_drops_the_matrix_suffix_but_never_the_whole_name(name, base):
    assert base_name(name) == base


def test_job_scope_drops_the_matrix_suffix():
    assert job_scope("o/r", "CI", "test (ubuntu-latest, 3.11)") == job_scope("o/r", "CI", "test (windows, 3.12)")
    assert job_scope("o/r", "CI", "(linux)") != job_scope("o/r", "CI", "(windows)")
    assert job_scope("o/r", "CI", "test") == "o/r\x1fCI\x1ftest"
    assert job_scope("o/r", "CI", "test") != job_scope("o/r", "CI", "lint")


# ---- fingerprints ------------------------------------------------------------------------------------------------

SAME = [
    ("FAILED tests/test_a.py::test_x - assert 401 == 200 (0.52s)",
     "FAILED tests/test_a.py::test_x - assert 500 == 200 (1.2s)"),
    ("--- FAIL: TestParse (0.00s)", "--- FAIL: TestParse (12.31s)"),
    ("FAIL [   0.004s] core tests::roundtrip", "FAIL [ 1.250s] core tests::roundtrip"),
    ("done in 3m2s at 2024-03-01T10:00:00Z", "done in 12m59s at 2025-11-30T23:59:59.123+02:00"),
    ("took 123 ms at 10:00:01.123", "took 5 ms at 23:59:59"),
    ("No such file: '/tmp/pytest-of-runner/pytest-3/test_csv0/out.csv'",
     "No such file: '/tmp/pytest-of-runner/pytest-17/test_csv1/out.csv'"),
    ("/home/runner/work/shop/shop/src/app.py:12:5: error: x", "/home/runner/work/cart/cart/src/app.py:40:9: error: x"),
    ("D:\\a\\shop\\shop\\src\\app.c(3): error", "D:\\a\\cart\\cart\\src\\app.c(3): error"),
    ("/Users/runner/work/shop/shop/lib/x.rb:3: boom", "/home/runner/work/shop/shop/lib/x.rb:3: boom"),
    ("/opt/actions-runner/_work/shop/shop/src/app.py:3: boom", "/home/ci/runner/_work/cart/cart/src/app.py:9: boom"),
    ("/__w/shop/shop/src/app.py:3: boom", "src/app.py:3: boom"),
    ("open /private/var/folders/x1/abc/T/go-build123/b001/main.go", "open /var/folders/zz/q9/T/go-build9/b002/main.go"),
    ("C:\\Users\\runneradmin\\AppData\\Local\\Temp\\tmpab12\\data.json missing",
     "C:\\Users\\runneradmin\\AppData\\Local\\Temp\\tmpzz99\\data.json missing"),
    ("src/index.ts(3,7): error TS2322: nope", "src/index.ts(30,17): error TS2322: nope"),
    ("App.java:[12,5] cannot find symbol", "App.java:[120,15] cannot find symbol"),
    ("request 0f8fad5b-d9cb-469f-a165-70867728950e failed", "request 7c9e6679-7425-40de-944b-e07fc1f90ae7 failed"),
    ("at commit 3f2a9c1 on 4b825dc642cb6eb9a060e54bf8d69288fbee4904", "at commit 9bd1e22 on deadbeef0123456789"),
    ("object at 0x7ffd5e3c2a10 freed", "object at 0x55d1c0ffee00 freed"),
    ("listening on 127.0.0.1:43121 (pid 4242)", "listening on 127.0.0.1:51003 (pid 17)"),
    ("\x1b[31mERROR\x1b[0m  boom", "ERROR boom"),
    ("##[error]The operation was canceled.", "The operation was canceled."),
    ("failed to solve: ref 1b4e28ba-2fa1-11d2-883f-0016d3cca427::k3v8mxq0b2h7l5d9wzt1pa6ne: not found",
     "failed to solve: ref 6fa459ea-ee8a-3ca4-894e-db77e160355e::q9w2e8r4t6y1u3i5o7p0zx4cv: not found"),
]
DIFFERENT = [
    ("FAILED tests/test_a.py::test_x - assert 1 == 2", "FAILED tests/test_a.py::test_y - assert 1 == 2"),
    ("error TS2322: Type mismatch", "error TS2345: Type mismatch"),
    ("error[E0308]: mismatched types", "error[E0599]: mismatched types"),
    ("FAILED tests/test_a.py::test_x - KeyError: 'a'", "FAILED tests/test_a.py::test_x - ValueError: bad"),
    ("test_case_1 failed", "test_case_2 failed"),
    ("Process completed with exit code 1", "Process completed with exit code 137"),
    ("src/parser.c:3:1: error: x", "src/lexer.c:3:1: error: x"),
]


@pytest.mark.parametrize("a,b", SAME)
def test_same_cause_same_fingerprint(a, b):
    assert normalise(a) == normalise(b), (normalise(a), normalise(b))
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize("a,b", DIFFERENT)
def test_different_causes_differ(a, b):
    assert fingerprint(a) != fingerprint(b), normalise(a)


def test_normalise_examples_and_fingerprint_shape():
    assert normalise("/home/runner/work/r/r/x.py:123:45: E501") == "x.py:N:N: E501"
    assert normalise("  many    spaces\tand tabs  ") == "many spaces and tabs"
    assert normalise("TS2322 E0308 test_case_1 v2") == "TS2322 E0308 test_case_1 v2"
    fp = fingerprint("anything")
    assert len(fp) == 16 and int(fp, 16) >= 0
    assert fingerprint("x", "scope") != fingerprint("x")
