"""The logs of the generated history's failed jobs (`bench/generate.py`): causes, pools and picks.

A cause is one failure as a tool prints it: a pytest test that fails an assertion, a Go compile
error, a runner that lost contact.  Each repository has its own stack (Python, Go, TypeScript,
Rust, Java) and so its own tests and errors; each kind of job (tests, build, lint, end-to-end,
docs, publish, ...) draws from its pool of that stack with Zipf weights, so a few causes are most
of the failures and many are rare.  Infra causes (network, runner lost, out of memory, disk) are
the same text in every repository: the store-wide head.  `compose` turns one to three causes of
a job into the log GitHub would serve (timestamps, the step's group header, the tool's own
header, summary and footer, the exit-code line), which the product's extractor then reads.

Pure and deterministic: the pools come from a seeded `random.Random`.
"""
import random
from dataclasses import dataclass
from datetime import datetime, timezone


@dataclass(frozen=True)
class Cause:
    key: str  # unique in the pool
    family: str  # how its lines are put together with others (FAMILIES); the same family can share a log
    body: tuple  # the cause's lines in the tool's detailed output
    summary: tuple = ()  # its lines in the tool's summary, if the tool prints one
    # What the bench stores when the product's extractor is not there (failures/extract.py): the rule
    # and class a reader would give it, and the line shown.
    rule: str = "catch-all"
    klass: str = "unknown"
    text: str = ""
    fallback: bool = False


# family: (command, header lines, summary header, footer lines ({n} failures, {ok} passed), exit code)
FAMILIES = {
    "pytest": ("pytest -q --maxfail=20", (
        "============================= test session starts ==============================",
        "platform linux -- Python 3.11.7, pytest-8.0.2, pluggy-1.4.0",
        "rootdir: /home/runner/work/{name}/{name}", "collected 412 items", "",
        "=================================== FAILURES ===================================",
    ), ("=========================== short test summary info ============================",),
        ("======================== {n} failed, {ok} passed in 41.27s ========================",), 1),
    "gotest": ("go test -race ./...", (), (), ("FAIL", "FAIL\tgithub.com/bigorg/{name}/internal/api\t0.215s"), 1),
    "jest": ("npx jest --ci", (), (), ("", "Test Suites: {n} failed, 38 passed, 39 total",
                                       "Tests:       {n} failed, {ok} passed, 412 total",
                                       "Time:        18.224 s", "Ran all test suites."), 1),
    "cargo": ("cargo test --locked", ("running 121 tests",), ("", "failures:"),
              ("", "test result: FAILED. {ok} passed; {n} failed; 0 ignored; 0 measured; 0 filtered out; "
                   "finished in 2.31s", "error: test failed, to rerun pass `--lib`"), 101),
    "maven": ("mvn -B verify", ("[INFO] -------------------------------------------------------",
                                "[INFO]  T E S T S",
                                "[INFO] -------------------------------------------------------"),
              ("[INFO] Results:", "[INFO] ", "[ERROR] Failures: "),
              ("[ERROR] Tests run: 412, Failures: {n}, Errors: 0, Skipped: 3", "[INFO] BUILD FAILURE",
               "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test "
               "(default-test) on project {name}: There are test failures."), 1),
    "playwright": ("npx playwright test", ("Running 96 tests using 2 workers",), ("",),
                   ("  {n} failed", "  {ok} passed (2.4m)"), 1),
    "ruff": ("ruff check .", (), (), ("Found {n} error(s).",), 1),
    "mypy": ("mypy src", (), (), ("Found {n} error(s) in {n} file(s) (checked 88 source files)",), 1),
    "pip": ("pip install -r requirements.txt", (), (), (), 1),
    "py": ("python -m build", (), (), (), 1),
    "gobuild": ("go build ./...", ("# github.com/bigorg/{name}/internal/api",), (), (), 1),
    "golint": ("golangci-lint run", (), (), (), 1),
    "tsc": ("npx tsc --noEmit", (), (), ("", "Found {n} error(s)."), 2),
    "npm": ("npm ci", (), (), (), 1),
    "eslint": ("npx eslint .", (), (), ("", "\u2716 {n} problem(s) ({n} error(s), 0 warnings)"), 1),
    "rustc": ("cargo build --locked", ("   Compiling {name} v0.4.2 (/home/runner/work/{name}/{name})",), (),
              ("error: could not compile `{name}` (lib) due to {n} previous error(s)",), 101),
    "clippy": ("cargo clippy -- -D warnings", ("    Checking {name} v0.4.2 (/home/runner/work/{name}/{name})",),
               (), ("error: could not compile `{name}` (lib) due to {n} previous error(s)",), 101),
    "javac": ("mvn -B compile", ("[INFO] Compiling 214 source files to /home/runner/work/{name}/{name}/target/classes",
                                 "[INFO] -------------------------------------------------------------",
                                 "[ERROR] COMPILATION ERROR : "), (),
              ("[INFO] BUILD FAILURE", "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-compiler-plugin:"
                                       "3.12.1:compile (default-compile) on project {name}: Compilation failure"), 1),
    "checkstyle": ("mvn -B checkstyle:check", (), (), (
        "[ERROR] Failed to execute goal org.apache.maven.plugins:maven-checkstyle-plugin:3.3.1:check (validate) on "
        "project {name}: You have {n} Checkstyle violation(s).",), 1),
    "sphinx": ("make -C docs html SPHINXOPTS=-W", ("Running Sphinx v7.3.7",), (),
               ("build finished with problems, {n} warning(s) (with warnings treated as errors).",), 1),
    "linkcheck": ("make -C docs linkcheck", (), (), ("build finished with problems.",), 2),
    # One-off scripts and runner messages: each cause carries its own lines and exit code.
    "script": ("./scripts/run.sh", (), (), (), None),
    "infra": ("./scripts/run.sh", (), (), (), None),
}


AREAS = ("auth", "api", "billing", "search", "export", "cache", "db", "ui", "i18n", "webhooks", "queue", "storage")
ACTIONS = ("rejects_expired_token", "paginates_results", "retries_on_conflict", "rounds_totals", "keeps_order",
           "handles_unicode", "refreshes_session", "limits_rate", "parses_dates", "merges_duplicates",
           "streams_large_files", "escapes_html", "falls_back_to_default", "honours_timezone", "cancels_pending_jobs",
           "expires_cache_entries", "validates_input", "counts_unique_users", "sorts_by_name", "reports_progress")
# (expected, received): what a failing equality assertion saw
MISMATCH = (("200", "401"), ("200", "500"), ("3", "4"), ("'EUR'", "'USD'"), ("True", "False"), ("'2026-03-01'",
            "'2026-02-28'"), ("[1, 2, 3]", "[1, 3, 2]"), ("0", "1"), ("'caf\u00e9'", "'cafe'"), ("12.5", "12.49"))


def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def _test(stack: str, rng: random.Random, area: str, action: str, *, flaky: bool) -> Cause:
    """A failing test of `stack`, as its runner prints it."""
    want, got = rng.choice(MISMATCH)
    name = f"test_{area}_{action}"
    line = rng.randrange(20, 400)
    if stack == "python":
        if flaky:
            error = rng.choice((
                "TimeoutError: timed out waiting for the worker after 5.0 s",
                "sqlite3.OperationalError: database is locked",
                "ConnectionRefusedError: [Errno 111] Connection refused",
                f"AssertionError: assert 0.{rng.randrange(151, 199)} < 0.15",
                "requests.exceptions.ReadTimeout: HTTPConnectionPool(host='localhost', port=8765): Read timed out. "
                "(read timeout=2)"))
        else:
            error = rng.choice((
                f"AssertionError: assert {got} == {want}", "KeyError: 'total'",
                "TypeError: unsupported operand type(s) for +: 'NoneType' and 'int'",
                "AttributeError: 'NoneType' object has no attribute 'id'",
                "sqlalchemy.exc.IntegrityError: (sqlite3.IntegrityError) UNIQUE constraint failed: users.email",
                f"ValueError: time data '2026-13-{line % 28 + 1:02d}' does not match format '%Y-%m-%d'"))
        path = f"tests/test_{area}.py"
        etype = error.split(":")[0].split(".")[-1] if ":" in error else "AssertionError"
        summary = f"FAILED {path}::{name} - {error}"
        body = (f"{'_' * 30} {name} {'_' * 30}", "", f"    def {name}(client):",
                f"        response = client.get('/{area}')", f">       assert response.json() == expected",
                f"E       {error}", "", f"{path}:{line}: {etype}")
        return Cause(f"py:{name}", "pytest", body, (summary,), "pytest", "test", summary)
    if stack == "go":
        test = "Test" + _camel(f"{area}_{action}")
        message = rng.choice(("context deadline exceeded", "dial tcp 127.0.0.1:5432: connect: connection refused",
                              "timed out waiting for the event after 2s")) if flaky else rng.choice((
                                  f"expected status {want}, got {got}", f"got {got} items, want {want}",
                                  f"unexpected error: sql: no rows in result set", f"Not equal: expected {want}, "
                                  f"actual {got}"))
        fail = f"--- FAIL: {test} (0.{rng.randrange(10, 99)}s)"
        body = (f"=== RUN   {test}", f"    {area}_test.go:{line}: {message}", fail)
        return Cause(f"go:{test}", "gotest", body, (), "go-test", "test", fail)
    if stack == "node":
        suite, title = area, action.replace("_", " ")
        file = f"src/{area}/{area}.test.ts"
        head = f"  \u25cf {suite} \u203a {title}"
        if flaky:
            detail = (f"    thrown: \"Exceeded timeout of 5000 ms for a test.", '    Add a timeout value to this test '
                      'to increase the timeout, if this is a long-running test."')
        else:
            detail = rng.choice(((f"    expect(received).toBe(expected) // Object.is equality", "",
                                  f"    Expected: {want}", f"    Received: {got}"),
                                 ("    TypeError: Cannot read properties of undefined (reading 'id')",)))
        where = f"({file}:{line}:{rng.randrange(3, 30)})"
        body = (f"FAIL {file}", head, "", *detail, "", f"      at Object.<anonymous> {where}")
        return Cause(f"ts:{suite}:{title}", "jest", body, (), "jest", "test", head.strip())
    if stack == "rust":
        test = f"{area}::tests::{action}"
        panic = f"thread '{test}' panicked at src/{area}.rs:{line}:{rng.randrange(5, 30)}:"
        detail = (rng.choice(("called `Result::unwrap()` on an `Err` value: Elapsed(())",
                              "called `Result::unwrap()` on an `Err` value: Os { code: 111, kind: ConnectionRefused, "
                              "message: \"Connection refused\" }")),) if flaky else rng.choice((
                                  ("assertion `left == right` failed", f"  left: {got}", f" right: {want}"),
                                  ("called `Option::unwrap()` on a `None` value",)))
        body = (f"test {test} ... FAILED", "", f"---- {test} stdout ----", panic, *detail,
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace")
        return Cause(f"rs:{test}", "cargo", body, (f"    {test}",), "cargo-test", "test", f"test {test} ... FAILED")
    # java
    cls, method = _camel(area) + "Test", _camel(action)[0].lower() + _camel(action)[1:]
    error = rng.choice(("java.util.concurrent.TimeoutException: condition not met within 5 seconds",
                        "java.net.ConnectException: Connection refused")) if flaky else rng.choice((
                            f"org.opentest4j.AssertionFailedError: expected: <{want}> but was: <{got}>",
                            "java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"name\" "
                            "is null"))
    body = (f"[ERROR] Tests run: 12, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.412 s <<< FAILURE! -- in "
            f"com.bigorg.{area}.{cls}",
            f"[ERROR] com.bigorg.{area}.{cls}.{method} -- Time elapsed: 0.031 s  <<< FAILURE!",
            error, f"\tat com.bigorg.{area}.{cls}.{method}({cls}.java:{line})")
    summary = f"[ERROR]   {cls}.{method}:{line} {error.split(': ', 1)[-1]}"
    return Cause(f"java:{cls}.{method}", "maven", body, (summary,), "junit", "test", body[1])


def _builds(stack: str, rng: random.Random) -> list[Cause]:
    """Compile and dependency errors of `stack` (a build job's failures)."""
    out = []
    for i, area in enumerate(rng.sample(AREAS, 10)):
        line, col = rng.randrange(10, 600), rng.randrange(2, 40)
        if stack == "python":
            text = rng.choice((f"ModuleNotFoundError: No module named '{area}_client'",
                               f"ImportError: cannot import name 'parse_{area}' from 'app.{area}' "
                               f"(/home/runner/work/app/src/app/{area}.py)",
                               f"ERROR: No matching distribution found for {area}-sdk==2.{i}.0"))
            family = "pip" if text.startswith("ERROR") else "py"
            body = ((f"ERROR: Could not find a version that satisfies the requirement {area}-sdk==2.{i}.0 "
                     f"(from versions: 1.9.0, 2.0.0)", text) if family == "pip" else
                    ("Traceback (most recent call last):", f'  File "/home/runner/work/app/src/app/{area}.py", '
                     f"line {line}, in <module>", text))
            out.append(Cause(f"pyb:{area}", family, body, (), "pip" if family == "pip" else "python-error",
                             "build", text))
        elif stack == "go":
            text = f"internal/{area}/{area}.go:{line}:{col}: " + rng.choice((
                f"undefined: parse{_camel(area)}", "declared and not used: err",
                "cannot use id (variable of type int64) as string value in argument to lookup"))
            out.append(Cause(f"gob:{area}", "gobuild", (text,), (), "go-build", "build", text))
        elif stack == "node":
            if i == 0:
                body = ("npm ERR! code ERESOLVE", "npm ERR! ERESOLVE unable to resolve dependency tree",
                        "npm ERR! Found: react@18.2.0", "npm ERR! Could not resolve dependency:",
                        "npm ERR! peer react@\"^17.0.0\" from react-beautiful-dnd@13.1.1")
                out.append(Cause("npm:eresolve", "npm", body, (), "npm", "build", body[1]))
                continue
            text = f"src/{area}/{area}.ts({line},{col}): error " + rng.choice((
                "TS2322: Type 'string' is not assignable to type 'number'.",
                "TS2339: Property 'id' does not exist on type 'User'.",
                "TS2307: Cannot find module './legacy' or its corresponding type declarations.",
                "TS2345: Argument of type 'undefined' is not assignable to parameter of type 'string'."))
            out.append(Cause(f"tsc:{area}", "tsc", (text,), (), "tsc", "build", text))
        elif stack == "rust":
            code, msg = rng.choice((("E0308", "mismatched types"), ("E0425", f"cannot find value `{area}_id` in this "
                                                                              "scope"),
                                    ("E0599", f"no method named `to_{area}` found for struct `Config` in the current "
                                              "scope"), ("E0382", "borrow of moved value: `config`")))
            text = f"error[{code}]: {msg}"
            body = (text, f"  --> src/{area}.rs:{line}:{col}", "   |", f"{line} |         let value = {area}(config);",
                    "   |                         ^^^^^^")
            out.append(Cause(f"rsb:{area}", "rustc", body, (), "rustc", "build", text))
        else:
            msg = rng.choice(("cannot find symbol", "incompatible types: java.lang.String cannot be converted to int",
                              "method does not override or implement a method from a supertype"))
            text = (f"[ERROR] /home/runner/work/app/app/src/main/java/com/bigorg/{area}/{_camel(area)}Service.java:"
                    f"[{line},{col}] {msg}")
            out.append(Cause(f"javac:{area}", "javac", (text,), (), "javac", "build", text))
    return out


def _lints(stack: str, rng: random.Random) -> list[Cause]:
    out = []
    for area in rng.sample(AREAS, 10):
        line, col = rng.randrange(10, 600), rng.randrange(1, 80)
        if stack == "python":
            if rng.random() < 0.5:
                text = f"src/app/{area}.py:{line}:{col}: " + rng.choice((
                    "F401 [*] `os` imported but unused", "F841 Local variable `result` is assigned to but never used",
                    "E501 Line too long (131 > 120)", "B006 Do not use mutable data structures for argument defaults"))
                out.append(Cause(f"ruff:{area}", "ruff", (text,), (), "ruff", "lint", text))
            else:
                text = f"src/app/{area}.py:{line}: error: " + rng.choice((
                    'Incompatible return value type (got "str | None", expected "str")  [return-value]',
                    'Argument 1 to "parse" has incompatible type "int"; expected "str"  [arg-type]',
                    'Item "None" of "User | None" has no attribute "id"  [union-attr]'))
                out.append(Cause(f"mypy:{area}", "mypy", (text,), (), "mypy", "lint", text))
        elif stack == "go":
            text = f"internal/{area}/{area}.go:{line}:{col}: " + rng.choice((
                "Error return value of `rows.Close` is not checked (errcheck)",
                "ineffectual assignment to err (ineffassign)",
                "S1002: should omit comparison to bool constant, can be simplified to `ok` (gosimple)"))
            out.append(Cause(f"gol:{area}", "golint", (text,), (), "golangci-lint", "lint", text))
        elif stack == "node":
            msg = rng.choice(("'unused' is assigned a value but never used  @typescript-eslint/no-unused-vars",
                              "Unexpected any. Specify a different type  @typescript-eslint/no-explicit-any",
                              "React Hook useEffect has a missing dependency: 'load'  react-hooks/exhaustive-deps"))
            text = f"  {line}:{col}  error  {msg}"
            out.append(Cause(f"eslint:{area}", "eslint", (f"/home/runner/work/app/app/src/{area}/index.tsx", text), (),
                             "eslint", "lint", text.strip()))
        elif stack == "rust":
            msg = rng.choice(("this `if` has identical blocks", "redundant clone",
                              "using `clone` on type `Id` which implements the `Copy` trait"))
            body = (f"error: {msg}", f"  --> src/{area}.rs:{line}:{col}",
                    "  = note: `-D warnings` implied by `-D clippy::all`")
            out.append(Cause(f"clippy:{area}", "clippy", body, (), "clippy", "lint", body[0]))
        else:
            text = (f"[ERROR] src/main/java/com/bigorg/{area}/{_camel(area)}Service.java:[{line},{col}] " +
                    rng.choice(("(imports) UnusedImports: Unused import - java.util.List.",
                                "(sizes) LineLength: Line is longer than 120 characters (found 131).")))
            out.append(Cause(f"cs:{area}", "checkstyle", (text,), (), "checkstyle", "lint", text))
    return out


def _e2e(rng: random.Random, browser: str) -> list[Cause]:
    out = []
    for i, (area, action) in enumerate(rng.sample([(a, b) for a in AREAS for b in ACTIONS], 14)):
        title = f"{area} \u203a {action.replace('_', ' ')}"
        where = f"[{browser}] \u203a tests/{area}.spec.ts:{rng.randrange(10, 200)}:5 \u203a {title}"
        error = rng.choice(("Error: Timed out 5000ms waiting for expect(locator).toBeVisible()",
                            "Error: expect(received).toHaveText(expected)",
                            "Error: page.goto: net::ERR_CONNECTION_REFUSED at http://localhost:3000/login",
                            "Error: locator.click: Target page, context or browser has been closed"))
        body = (f"  {i % 3 + 1}) {where} \u2500\u2500\u2500\u2500\u2500", "", f"    {error}", "")
        out.append(Cause(f"pw:{browser}:{area}:{action}", "playwright", body, (f"    {where}",), "playwright",
                         "test", where))
    return out


def _script(key: str, lines: tuple, code: int, rule="exit-code", klass="unknown", text=None, fallback=True,
            family="script") -> Cause:
    """A one-off step's output followed by the runner's exit-code line."""
    exit_line = f"##[error]Process completed with exit code {code}."
    return Cause(key, family, lines + (exit_line,), (), rule, klass, text or exit_line, fallback)


def _misc(stack: str, rng: random.Random) -> dict[str, list[Cause]]:
    """The pools of the other jobs (docs, publish, notify, nightly jobs, ...)."""
    pages = ("index", "api", "auth", "deploy", "config", "faq")
    # Sphinx 7.3+ under -W: each warning where it is, then one summary line (the family's footer).
    docs = [Cause(f"sphinx:{page}", "sphinx", (
        f"/home/runner/work/app/app/docs/{page}.rst:{rng.randrange(5, 300)}: WARNING: undefined label: "
        f"'{page}-{k}' [ref.ref]",), (), "sphinx", "build", f"docs/{page}.rst: WARNING: undefined label: '{page}-{k}'")
            for k, page in enumerate(pages)]
    links = []
    for k, host in enumerate(("example.com", "docs.bigorg.dev", "status.bigorg.dev", "legacy.bigorg.com")):
        text = (f"(     {pages[k]}: line   {rng.randrange(5, 300)}) broken    https://{host}/{pages[k]}/v{k} - "
                f"404 Client Error: Not Found for url: https://{host}/{pages[k]}/v{k}")
        links.append(Cause(f"link:{host}", "linkcheck", (text,), (), "linkcheck", "lint", text))
    links.append(Cause("link:timeout", "linkcheck", (
        "(   deploy: line   41) broken    https://status.bigorg.dev/ - HTTPSConnectionPool(host='status.bigorg.dev', "
        "port=443): Read timed out. (read timeout=30)",), (), "network", "infra"))
    publish = {
        "python": ("HTTPError: 400 Bad Request from https://upload.pypi.org/legacy/", "File already exists."),
        "go": ("error: tag v1.4.2 already exists",),
        "node": ("npm ERR! code E403", "npm ERR! 403 403 Forbidden - PUT https://registry.npmjs.org/@bigorg%2fapp - "
                 "You cannot publish over the previously published versions: 1.4.2."),
        "rust": ("error: failed to publish to registry at https://crates.io",
                 "Caused by: the remote server responded with an error: crate version `0.4.2` is already uploaded"),
        "java": ("[ERROR] Failed to execute goal org.apache.maven.plugins:maven-deploy-plugin:3.1.1:deploy "
                 "(default-deploy) on project app: Return code is: 409, ReasonPhrase: Conflict.",),
    }[stack]
    pools = {
        "docs": docs, "links": links,
        "publish": [_script("pub:dup", publish, 1, "publish", "build", publish[0], False),
                    _script("pub:denied", ("denied: requested access to the resource is denied",), 1, "docker",
                            "build", "denied: requested access to the resource is denied", False)],
        "sign": [_script("sign:key", ("gpg: signing failed: No secret key",), 2)],
        "notify": [_script("notify:502", ("curl: (22) The requested URL returned error: 502",), 22, "network", "infra",
                           "curl: (22) The requested URL returned error: 502", False),
                   _script("notify:slack", ("Error: Slack API error: channel_not_found",), 1)],
        "report": [_script("report:enoent", ("Error: ENOENT: no such file or directory, open 'results/summary.json'",),
                           1, "node-error", "unknown", "Error: ENOENT: no such file or directory, open "
                           "'results/summary.json'", False),
                   _script("report:exit", ("Generating the report for 96 suites",), 1)],
        "upload": [_script("upload:conflict", ("Error: Failed to CreateArtifact: Received non-retryable error: Failed "
                                               "request: (409) Conflict: an artifact with this name already exists on "
                                               "the workflow run",), 1, "artifact", "build"),
                   _script("upload:timeout", ("Error: Unable to upload artifact: connect ETIMEDOUT 140.82.112.21:443",),
                           1, "network", "infra", "connect ETIMEDOUT 140.82.112.21:443", False)],
        "bench": [_script(f"bench:{m}", (f"Regression: {m} p95 {150 + 10 * k}.4 ms > 150.0 ms budget "
                                         f"(+{4 + 6 * k}.1 %)",), 1)
                  for k, m in enumerate(("login", "search", "export"))],
        "fuzz": [_script("fuzz:asan", ("==2817==ERROR: AddressSanitizer: heap-buffer-overflow on address "
                                       "0x602000000a1c at pc 0x55d4c2 bp 0x7ffd1a sp 0x7ffd10",
                                       "READ of size 4 at 0x602000000a1c thread T0"), 1, "sanitizer", "test",
                         "==2817==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x602000000a1c", False),
                 _script("fuzz:panic", ("panic: runtime error: index out of range [3] with length 3", "",
                                        "goroutine 7 [running]:"), 2, "go-panic", "test",
                         "panic: runtime error: index out of range [3] with length 3", False)],
        "soak": [_script("soak:oom", ("/home/runner/work/_temp/2f1c.sh: line 1:  2817 Killed                  "
                                      "./soak --hours 2",), 137, "oom", "infra", "Killed", False),
                 _script("soak:heap", ("FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of "
                                       "memory",), 134, "oom", "infra", "JavaScript heap out of memory", False)],
    }
    return pools


INFRA = (  # the same text in every repository: the store-wide head; weights relative
    (5, Cause("net:resolve", "infra", (
        "fatal: unable to access 'https://github.com/bigorg/app/': Could not resolve host: github.com",
        "##[error]Process completed with exit code 128."), (), "network", "infra",
        "fatal: unable to access 'https://github.com/bigorg/app/': Could not resolve host: github.com")),
    (4, Cause("net:reset", "infra", (
        "npm ERR! code ECONNRESET", "npm ERR! network request to https://registry.npmjs.org/react failed, reason: read "
        "ECONNRESET", "##[error]Process completed with exit code 1."), (), "network", "infra",
        "npm ERR! network request to https://registry.npmjs.org/react failed, reason: read ECONNRESET")),
    (4, Cause("net:pip", "infra", (
        "ERROR: Could not install packages due to an OSError: HTTPSConnectionPool(host='files.pythonhosted.org', "
        "port=443): Read timed out.", "##[error]Process completed with exit code 1."), (), "network", "infra",
        "HTTPSConnectionPool(host='files.pythonhosted.org', port=443): Read timed out.")),
    (3, Cause("net:docker", "infra", (
        "Error response from daemon: Get \"https://registry-1.docker.io/v2/\": net/http: request canceled while "
        "waiting for connection (Client.Timeout exceeded while awaiting headers)",
        "##[error]Process completed with exit code 1."), (), "network", "infra", "docker registry timeout")),
    (2, Cause("net:ratelimit", "infra", (
        "Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may increase the "
        "limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
        "##[error]Process completed with exit code 1."), (), "network", "infra", "toomanyrequests")),
    (4, Cause("runner:lost", "infra", (
        "##[error]The hosted runner: GitHub Actions 12 lost communication with the server. Anything in your "
        "workflow that terminates the runner process, starves it for CPU/Memory, or blocks its network access "
        "can cause this error.",), (), "runner-lost", "infra", "runner lost communication with the server")),
    (2, Cause("runner:shutdown", "infra", (
        "##[error]The runner has received a shutdown signal. This can happen when the runner service is stopped, "
        "or a manually started runner is canceled.",), (), "runner-shutdown", "infra", "runner shutdown signal")),
    (2, Cause("oom:killed", "infra", (
        "/home/runner/work/_temp/9c1e4b2a.sh: line 3:  2817 Killed                  make test",
        "##[error]Process completed with exit code 137."), (), "oom", "infra", "Killed")),
    (1, Cause("disk:full", "infra", (
        "System.IO.IOException: No space left on device : '/home/runner/runners/2.311.0/_diag/"
        "Worker_20261127-120000-utc.log'",), (), "disk", "infra", "No space left on device")),
)


def timeout_cause(minutes: int) -> Cause:
    text = (f"##[error]The job running on runner GitHub Actions 7 has exceeded the maximum execution time of "
            f"{minutes} minutes.")
    return Cause(f"timeout:{minutes}", "infra", (text,), (), "job-timeout", "timeout", text)


STACKS = ("python", "go", "node", "rust", "java")


def category(job_base: str) -> str:
    """The pool a job draws from, by its base name (bench/generate.py's WORKFLOWS)."""
    if job_base.startswith(("test", "matrix")):
        return "test"
    if job_base.startswith("e2e"):
        return "e2e"
    return {"build": "build", "package": "build", "lint": "lint", "build-docs": "docs", "linkcheck": "links",
            "publish": "publish", "sign": "sign", "notify": "notify", "announce": "notify", "report": "report",
            "upload": "upload", "bench": "bench", "fuzz": "fuzz", "soak": "soak"}.get(job_base, "report")


class Pools:
    """Each repository's causes per category, with Zipf weights (the first few causes are most failures)."""

    def __init__(self, repos: list[str], seed: int):
        self.rng = random.Random(seed)
        self.stack = {repo: STACKS[i % len(STACKS)] for i, repo in enumerate(repos)}
        self.pools: dict = {}
        self.infra = [c for _, c in INFRA]
        self.infra_cum = _cumulative([w for w, _ in INFRA])

    def pool(self, repo: str, cat: str) -> tuple[list, list]:
        """(causes, cumulative weights) of `repo`'s category `cat` ("flaky" too, and "e2e:<browser>")."""
        key = (repo, cat)
        if key not in self.pools:
            stack, rng = self.stack[repo], random.Random(f"{repo}:{cat}:{self.rng.random()}")
            pairs = [(a, b) for a in AREAS for b in ACTIONS]
            if cat == "test":
                causes = [_test(stack, rng, a, b, flaky=False) for a, b in rng.sample(pairs, 48)]
            elif cat == "flaky":
                causes = [_test(stack, rng, a, b, flaky=True) for a, b in rng.sample(pairs, 8)]
            elif cat == "build":
                causes = _builds(stack, rng)
            elif cat == "lint":
                causes = _lints(stack, rng)
            elif cat.startswith("e2e:"):
                causes = _e2e(rng, cat[4:])
            else:
                causes = _misc(stack, rng)[cat]
            causes = list({c.key: c for c in causes}.values())  # a repeated draw is one cause
            self.pools[key] = (causes, _cumulative([1 / (k + 1) ** 1.1 for k in range(len(causes))]))
        return self.pools[key]

    def draw(self, rng: random.Random, repo: str, cat: str) -> Cause:
        causes, cum = self.pool(repo, cat)
        return causes[_pick(rng, cum)]

    def draw_infra(self, rng: random.Random) -> Cause:
        return self.infra[_pick(rng, self.infra_cum)]


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return [x / total for x in out]


def _pick(rng: random.Random, cumulative: list[float]) -> int:
    roll = rng.random()
    for i, edge in enumerate(cumulative):  # pools are short (<= 48): a scan beats bisect's call
        if roll < edge:
            return i
    return len(cumulative) - 1


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z "


def compose(causes: tuple, repo: str, t: float) -> str:
    """The log GitHub would serve for a job that failed with `causes` (one family), timestamped from `t`."""
    name = repo.split("/")[-1]
    family = causes[0].family
    command, header, summary_head, footer, code = FAMILIES[family]
    lines = ["##[group]Run actions/checkout@v4", "with:", f"  repository: {repo}", "##[endgroup]",
             f"Syncing repository: {repo}", "##[group]Run " + command, command, "shell: /usr/bin/bash -e {0}",
             "##[endgroup]"]
    lines += [h.format(name=name) for h in header]
    for c in causes:
        lines += c.body
    if any(c.summary for c in causes):
        lines += summary_head
        for c in causes:
            lines += c.summary
    n = len(causes)
    lines += [f.format(n=n, ok=412 - n, name=name) for f in footer]
    if code is not None:
        lines.append(f"##[error]Process completed with exit code {code}.")
    lines.append("Post job cleanup.")
    stamps = [_stamp(t - len(lines) + i) for i in range(len(lines))]
    return "\n".join(s + line for s, line in zip(stamps, lines)) + "\n"


TIMEOUT_MINUTES = {"CI": 60, "Lint": 15, "E2E": 90, "Docs": 30, "Release": 60, "Nightly": 360}
BROWSERS = {"chrome": "chromium", "firefox": "firefox", "webkit": "webkit"}


def _category_key(job_base: str) -> str:
    cat = category(job_base)
    if cat == "e2e":
        inner = job_base[job_base.find("(") + 1:job_base.find(")")] if "(" in job_base else "chrome"
        return "e2e:" + BROWSERS.get(inner, inner)
    return cat


class Failures:
    """Picks each failed job's causes and makes the rows the product stores for it (`store.joblogs.save`).

    The log of a set of causes is extracted once (the product's extractor when it is there) and
    reused for every job that failed the same way: the extractor's output depends on the log and,
    for last-resort rules only, on the job's scope.
    """

    def __init__(self, repos: list[str], seed: int):
        self.pools = Pools(repos, seed)
        self.rng = random.Random(seed * 7919 + 13)  # its own stream: the other tables stay as they were
        self.streaks: dict = {}  # (streak, job base name) -> causes
        self.cache: dict = {}
        self.extractions = 0
        try:  # the product's extraction (failures/), when it is there
            from failures import extract, rules

            self._rules, self._extract, self._scope = rules.load(), extract.extract, extract.job_scope
        except ImportError:
            self._rules = self._extract = None
            self._scope = lambda repo, workflow, name: f"{repo}\x1f{workflow}\x1f{name.split(' (')[0]}"
        try:
            from failures.fingerprint import fingerprint

            self._fingerprint = fingerprint
        except ImportError:
            import hashlib

            def fingerprint(text, scope=""):
                return hashlib.sha256(f"{scope}\x1f{text}".encode()).hexdigest()[:16]

            self._fingerprint = fingerprint
        self.with_extractor = self._extract is not None

    def causes(self, repo: str, workflow: str, job_base: str, conclusion: str, *, flaky: bool,
               streak: int | None) -> tuple:
        """The causes of a failed job: a red streak on the default branch repeats its cause per job, a
        failed attempt that passed on re-run is a flaky test or infra, else the job's pool (sometimes 2-3)."""
        rng = self.rng
        if conclusion == "timed_out":
            return (timeout_cause(TIMEOUT_MINUTES.get(workflow, 60)),)
        cat = _category_key(job_base)
        if flaky:  # it passed on re-run, even in a red streak
            if rng.random() < 0.35 or cat not in ("test", "e2e:chromium", "e2e:firefox", "e2e:webkit"):
                return (self.pools.draw_infra(rng),)
            return (self.pools.draw(rng, repo, "flaky" if cat == "test" else cat),)
        if streak is not None:
            key = (streak, job_base)
            if key not in self.streaks:
                self.streaks[key] = (self.pools.draw(rng, repo, cat),)
            return self.streaks[key]
        if rng.random() < 0.07:
            return (self.pools.draw_infra(rng),)
        first = self.pools.draw(rng, repo, cat)
        if first.family in ("script", "infra") or rng.random() >= 0.2:
            return (first,)
        out = [first]
        for _ in range(1 if rng.random() < 0.7 else 2):
            more = self.pools.draw(rng, repo, cat)
            if more.family == first.family and more not in out:
                out.append(more)
        return tuple(out)

    def extraction(self, causes: tuple, repo: str, workflow: str, job_name: str, t: float):
        """(lines as failure_lines columns after the job, zlib excerpt, log bytes) of a job with `causes`."""
        key = (tuple(c.key for c in causes), repo)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = self._extract_once(causes, repo, "", t)
        if hit[3]:  # a last-resort rule: its fingerprint is the job's (scope), so extract per scope
            scope = self._scope(repo, workflow, job_name)
            key = key + (scope,)
            hit = self.cache.get(key)
            if hit is None:
                hit = self.cache[key] = self._extract_once(causes, repo, scope, t)
        return hit[:3]

    def _extract_once(self, causes: tuple, repo: str, scope: str, t: float):
        import zlib

        log = compose(causes, repo, t)
        self.extractions += 1
        if self._extract is not None:
            ex = self._extract(log, self._rules, job_scope=scope)
            lines = tuple((line.rule, line.klass, line.text, line.fingerprint, line.source, line.path, line.line,
                           int(line.fallback)) for line in ex.lines)
            excerpt, size = ex.excerpt, ex.log_bytes
        else:  # declared by the pool; fingerprints: sha256 of the text (and the scope for last-resort rules)
            numbered = log.split("\n")
            lines = []
            for c in causes:
                number = next((i + 1 for i, line in enumerate(numbered) if c.text and c.text in line), None)
                lines.append((c.rule, c.klass, c.text, self._fingerprint(c.text, scope if c.fallback else ""),
                              "log", None, number, int(c.fallback)))
            lines = tuple(lines)
            excerpt, size = "\n".join(numbered[-24:]), len(log.encode())
        blob = zlib.compress(excerpt.encode("utf-8"), 6) if excerpt else None
        return lines, blob, size, any(line[7] for line in lines) and bool(lines)
