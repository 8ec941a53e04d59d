"""Failure rules: the built-in file, a user's file (FAILURE_RULES) changing classification without code changes,
`disable`, and a clear RulesError for every kind of mistake."""
import re
import tomllib

import pytest

from failures import CLASSES
from failures.extract import extract, job_scope
from failures.rules import BUILTIN, RulesError, load

SCOPE = job_scope("acme/app", "Deploy", "deploy")
LOG = "".join(f"2024-03-01T10:00:{i:02d}.0000000Z {line}\n" for i, line in enumerate([
    "##[group]Run ./deploy.sh production",
    "Uploading release 1.4.2",
    "deploy: quota exceeded for project acme-prod (limit 40 instances)",
    "FAILED tests/smoke/test_home.py::test_home - ConnectionRefusedError",
    "##[error]Process completed with exit code 1.",
]))


def write(tmp_path, text: str, name: str = "rules.toml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_builtin_rules_are_valid_and_cover_each_class():
    rules = load()
    names = [rule.name for rule in rules]
    assert len(names) == len(set(names)) and len(names) > 60
    assert {rule.klass for rule in rules if not rule.ignore} == set(CLASSES)
    fallbacks = [rule.name for rule in rules if rule.fallback]
    assert fallbacks == ["exit-code", "catch-all"]
    # The file parses as plain TOML too (users copy its format).
    assert len(tomllib.loads(open(BUILTIN, encoding="utf-8").read())["rule"]) == len(names)


def test_a_user_rule_changes_a_classification_without_code_changes(tmp_path):
    before = extract(LOG, load(), job_scope=SCOPE).lines[0]
    assert (before.rule, before.klass) == ("pytest", "test")
    path = write(tmp_path, '''
[[rule]]
name = "cloud-quota"
class = "infra"
pattern = '(?P<t>quota exceeded for project \\S+)'
capture = "t"
''')
    after = extract(LOG, load(path), job_scope=SCOPE).lines[0]
    assert (after.rule, after.klass, after.text, after.line) == (
        "cloud-quota", "infra", "quota exceeded for project acme-prod", 3)


def test_user_rules_come_before_builtins(tmp_path):
    path = write(tmp_path, '''
[[rule]]
name = "smoke-tests-are-infra"
class = "infra"
ignore_case = true
pattern = '^failed tests/smoke/'
''')
    rules = load(path)
    assert rules.rules[0].name == "smoke-tests-are-infra" and rules.rules[0].origin == path
    line = extract(LOG, rules, job_scope=SCOPE).lines[0]
    assert (line.rule, line.klass) == ("smoke-tests-are-infra", "infra")


def test_disable_turns_builtins_off(tmp_path):
    path = write(tmp_path, 'disable = ["pytest", "uncaught-exception"]\n')
    rules = load(path)
    assert "pytest" not in rules.index and "uncaught-exception" not in rules.index
    # With pytest off nothing but the fallbacks explains the log: the exit code, then the catch-all's line.
    lines = extract(LOG, rules, job_scope=SCOPE).lines
    assert [(line.rule, line.fallback, line.line) for line in lines] == [("exit-code", True, 5), ("catch-all", True, 4)]


def test_a_disabled_builtin_name_can_be_reused(tmp_path):
    path = write(tmp_path, '''
disable = ["pytest"]

[[rule]]
name = "pytest"
class = "test"
pattern = '^FAILED (?P<t>\\S+::\\w+)'
capture = "t"
''')
    line = extract(LOG, load(path), job_scope=SCOPE).lines[0]
    assert (line.rule, line.text) == ("pytest", "tests/smoke/test_home.py::test_home")


def test_an_ignore_rule_hides_noise(tmp_path):
    path = write(tmp_path, '''
[[rule]]
name = "known-smoke-noise"
ignore = true
pattern = 'tests/smoke/'
''')
    line = extract(LOG, load(path), job_scope=SCOPE).lines[0]
    assert line.rule == "exit-code"


@pytest.mark.parametrize("text,message", [
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = "x"\ncolour = "red"\n',
     r"rule 1 \('a'\): unknown key 'colour'"),
    ('[[rule]]\nname = "a"\nclass = "flaky"\npattern = "x"\n',
     r"rule 1 \('a'\): `class` must be one of test, build, lint, infra, timeout, unknown, not 'flaky'"),
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = "x"\n[[rule]]\nname = "a"\nclass = "lint"\npattern = "y"\n',
     r"rule 2 \('a'\): duplicate name: rule 1 has it too"),
    ('[[rule]]\nname = "pytest"\nclass = "test"\npattern = "x"\n',
     r"rule 1 \('pytest'\): duplicate name: a built-in rule has it \(add it to `disable` to replace it\)"),
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = "(?P<t>unclosed"\n',
     r"rule 1 \('a'\): bad pattern '\(\?P<t>unclosed': missing \)"),
    ('[[rule]]\nname = "look"\nclass = "test"\npattern = "foo(?=bar)"\n',
     r"rule 1 \('look'\): bad pattern 'foo\(\?=bar\)': invalid perl operator"),
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = "(?P<x>a)"\ncapture = "t"\n',
     r"rule 1 \('a'\): `capture` names group 't', which the pattern does not have"),
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = ".*"\n',
     r"rule 1 \('a'\): pattern '\.\*' matches an empty line"),
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = "\\\\Afoo"\n',
     r"rule 1 \('a'\): use \^ and \$ rather than"),
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = "x"\nscope = "repo"\n',
     r"rule 1 \('a'\): `scope` must be \"job\" or absent"),
    ('[[rule]]\nname = "a"\nclass = "test"\npattern = "x"\nfallback = "yes"\n',
     r"rule 1 \('a'\): `fallback` must be true or false"),
    ('[[rule]]\nclass = "test"\npattern = "x"\n', r"rule 1: needs a `name`"),
    ('[[rule]]\nname = "a"\nclass = "test"\n', r"rule 1 \('a'\): needs a `pattern`"),
    ('disable = ["pytets"]\n', r"`disable` names 'pytets', which is not a built-in rule"),
    ('disable = "pytest"\n', r"`disable` must be a list of rule names"),
    ('rules = []\n', r"unknown top-level key 'rules'"),
    ('[[rule]\nname = "a"\n', r"not valid TOML"),
])
def test_each_mistake_gives_a_clear_error(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(RulesError) as caught:
        load(path)
    assert str(caught.value).startswith(path + ": "), str(caught.value)
    assert re.search(message, str(caught.value)), str(caught.value)


def test_a_missing_file_is_a_rules_error(tmp_path):
    with pytest.raises(RulesError, match="no such file"):
        load(str(tmp_path / "nope.toml"))


def test_patterns_run_in_linear_time(tmp_path):
    """A pattern that backtracks exponentially in a backtracking engine is harmless in RE2."""
    path = write(tmp_path, '[[rule]]\nname = "redos"\nclass = "test"\npattern = \'^(a+)+$\'\n')
    rules = load(path)
    line = "a" * 20000 + "!"  # 2^20000 paths for a backtracking engine
    assert rules.classify(line) is None
    assert extract(f"2024-03-01T10:00:00.0000000Z {line}\n" * 50, rules).lines == []


def test_a_rule_sees_the_line_without_timestamp_and_colour(tmp_path):
    path = write(tmp_path, '[[rule]]\nname = "anchored"\nclass = "lint"\npattern = \'^Lint: (?P<t>\\w+)$\'\n'
                           'capture = "t"\n')
    log = "2024-03-01T10:00:00.1234567Z \x1b[33mLint: \x1b[0mfailed\n"
    line = extract(log, load(path)).lines[0]
    assert (line.rule, line.text) == ("anchored", "failed")


# One real line per built-in rule (as the tool prints it), classified by that rule: a rule edit that breaks
# one of them, or a new rule that steals its lines, fails here.
EXAMPLES = {
    "sphinx-autodoc": ["WARNING: autodoc: failed to import module 'search' from module 'acme_api'; the following "
                       "exception was raised:"],
    "ignore-warnings": ["WARNING: Retrying (Retry(total=4)) after connection broken by 'ProtocolError'",
                        "npm WARN deprecated request@2.88.2: request has been deprecated"],
    "ignore-retries": ["Retrying in 5 seconds: read tcp 10.1.0.4:443: connection reset by peer",
                       "Err:1 http://azure.archive.ubuntu.com/ubuntu jammy/main amd64 libpq5 14.11"],
    "job-timeout": ["##[error]The job running on runner GitHub Actions 12 has exceeded the maximum execution "
                    "time of 360 minutes."],
    "step-timeout": ["##[error]The action 'Run tests' has timed out after 30 minutes."],
    "cancelled-by-concurrency": ["##[error]Canceling since a higher priority waiting request for "
                                 "'CI-refs/heads/main' exists"],
    "cancelled": ["##[error]The operation was canceled.", "Error: The operation was canceled."],
    "runner-shutdown": ["##[error]The runner has received a shutdown signal. This can happen when the runner "
                        "service is stopped, or a manually started runner is canceled."],
    "runner-lost": ["The hosted runner: GitHub Actions 4 lost communication with the server. Anything in your "
                    "workflow that terminates the runner process can cause this error.",
                    "The self-hosted runner: gpu-box-2 lost communication with the server."],
    "runner-provisioning": ["##[error]An error occurred while provisioning resources (Error Type: Disconnect)."],
    "simulator": ["xcodebuild: error: Failed to prepare device 'iPhone 15' for testing.",
                  "\tUnderlying Error: Unable to boot the Simulator. launchd failed to respond."],
    "disk-full": ["System.IO.IOException: No space left on device : '/home/runner/runners/2.314.1/_diag/"
                  "Worker_20240301.log'", "OSError: [Errno 28] No space left on device"],
    "oom-node": ["FATAL ERROR: Reached heap limit Allocation failed - JavaScript heap out of memory"],
    "oom-go": ["fatal error: runtime: out of memory"],
    "oom-java": ['Exception in thread "main" java.lang.OutOfMemoryError: GC overhead limit exceeded'],
    "oom-gradle": ["Expiring Daemon because JVM heap space is exhausted",
                   "Gradle build daemon has been stopped: JVM garbage collector thrashing and after running out of JVM "
                   "memory"],
    "gradle-daemon-crashed": ["Gradle build daemon disappeared unexpectedly (it may have been killed or may have "
                              "crashed)"],
    "oom-jest-worker": ["    A jest worker process (pid=4242) was terminated by another process: signal=SIGKILL, "
                        "exitCode=null. Operations that usually cause this are machine running out of memory"],
    "oom-python": ["MemoryError", "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 3.5 GiB"],
    "oom-compiler-killed": ["c++: fatal error: Killed signal terminated program cc1plus",
                            "error: could not compile `big` (lib); 1 warning emitted (signal: 9, SIGKILL: kill)"],
    "killed": ["Killed", "/home/runner/work/_temp/0a1b.sh: line 1:  4242 Killed                  python x.py",
               "Killed: 9", "signal: killed"],
    "exit-137": ["##[error]Process completed with exit code 137.",
                 "subprocess.CalledProcessError: Command 'make' returned non-zero exit status 137."],
    "linkcheck-transient": [
        "(guides/deploy: line   17) broken    https://github.com/a/b/releases - 429 Client Error: Too Many Requests "
        "for url: https://github.com/a/b/releases",
        "(index: line    9) broken    https://x.dev/ - HTTPSConnectionPool(host='x.dev', port=443): Read timed out.",
        "(api: line 3) broken    https://x.dev/a - 503 Server Error: Service Unavailable for url: https://x.dev/a"],
    "dns": ["curl: (6) Could not resolve host: downloads.acme.dev",
            "socket.gaierror: [Errno -3] Temporary failure in name resolution",
            "npm ERR! request to https://registry.npmjs.org/x failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org",
            'dial tcp: lookup proxy.golang.org on 127.0.0.53:53: no such host'],
    "docker-rate-limit": ["toomanyrequests: You have reached your pull rate limit. You may increase the limit"],
    "rate-limit": ["Error: API rate limit exceeded for installation ID 4242.",
                   "failed to fetch: 429 Too Many Requests"],
    "connection-reset": ["curl: (56) Recv failure: Connection reset by peer",
                         "Error: read ECONNRESET", "Error: socket hang up"],
    "network-timeout": ["npm ERR! code ETIMEDOUT", 'net/http: TLS handshake timeout',
                        "requests.exceptions.ReadTimeout: HTTPSConnectionPool(host='pypi.org', port=443): "
                        "Read timed out. (read timeout=15)",
                        "curl: (28) Operation timed out after 30001 milliseconds with 0 bytes received",
                        "dial tcp 140.82.112.3:443: i/o timeout"],
    "http-5xx": ["error: RPC failed; HTTP 503 curl 22 The requested URL returned error: 503",
                 "Received status code 502 from server: Bad Gateway", "npm ERR! code E503",
                 "<html><head><title>503 Service Temporarily Unavailable</title></head>"],
    "connection-failed": ["Failed to establish a new connection: [Errno 101] Network is unreachable')",
                          "fatal: the remote end hung up unexpectedly",
                          "E: Failed to fetch http://archive.ubuntu.com/ubuntu/pool/main/x.deb  404  Not Found"],
    "pytest": ["FAILED tests/test_api.py::test_login - assert 401 == 200",
               "FAILED tests/test_x.py::TestA::test_b[param with spaces-1] - KeyError: 'a'",
               "ERROR tests/test_db.py::test_query - sqlalchemy.exc.OperationalError: no such table: users"],
    "pytest-collect": ["_____________________ ERROR collecting tests/test_cli.py ______________________",
                       "____________________ ERROR at setup of test_query _____________________"],
    "unittest": ["FAIL: test_add (tests.test_math.TestMath.test_add)", "ERROR: test_parse (tests.test_config)"],
    "jest-noise": ["  ● Console", "  ● Test suite failed to run", "  ● Validation Warning:"],
    "jest": ["  ● Button › renders the label", "  ● adds 1 + 2 to equal 3"],
    "vitest": [" FAIL  src/utils/date.test.ts > formatDate > pads the month",
               " FAIL  |unit| src/a.test.ts > works"],
    "go-test": ["--- FAIL: TestParse (0.00s)", "    --- FAIL: TestParse/empty_input (0.00s)"],
    "nextest": ["        FAIL [   0.004s] acme-core writer::tests::roundtrip",
                "     SIGSEGV [   0.101s] acme-core ffi::tests::null"],
    "cargo-test": ["test parser::tests::parses_empty ... FAILED"],
    "maven-failure": ["[ERROR]   CalculatorTest.testDivide:27 expected: <2> but was: <3>",
                      "[ERROR]   Run 1: AppTest.testFlaky:12 expected: <true> but was: <false>"],
    "maven-test": ["[ERROR] com.acme.CalculatorTest.testDivide -- Time elapsed: 0.012 s <<< FAILURE!",
                   "[ERROR] testDivide(com.acme.CalculatorTest)  Time elapsed: 0.01 sec  <<< ERROR!"],
    "gradle-test": ["AppTest > testGreeting() FAILED", "CartSpec > adds an item > with a discount FAILED"],
    "dotnet-test": ["  Failed Acme.Tests.CartTests.AddsItem [12 ms]"],
    "rspec": ["rspec ./spec/models/user_spec.rb:12 # User is valid with a name"],
    "minitest-noise": ["  1) Failure:"],
    "minitest": ["UserTest#test_valid [test/models/user_test.rb:5]:"],
    "phpunit": ["1) Tests\\Unit\\UserTest::testName"],
    "xctest-failure": ["/Users/runner/work/a/a/AppTests/SyncTests.swift:88: error: -[AppTests.SyncTests testSync] : "
                       "Asynchronous wait failed: Exceeded timeout of 2 seconds"],
    "xctest": ["Test Case '-[AppTests.LoginTests testLogin]' failed (0.003 seconds)."],
    "bazel": ["//pkg/api:api_test                                                       FAILED in 3.2s"],
    "jest-verbose": ["    ✕ renders the label (5 ms)", "   × formatDate > pads the month 3ms"],
    "mocha": ["      1) should return -1 when the value is not present",
              "  2) API GET /users returns the list:"],
    "mypy": ['app/settings.py:12: error: Incompatible types in assignment (expression has type "str", variable '
             'has type "int")  [assignment]'],
    "pyright": ["  /home/runner/work/a/a/app/x.py:3:5 - error: Cannot access attribute \"foo\" for class \"Bar\""],
    "ruff": ["app/main.py:1:8: F401 [*] `os` imported but unused", "app/x.py:3:80: E501 Line too long (88 > 79)"],
    "ruff-full": ["F841 Local variable `result` is assigned to but never used",
                  "SC2086 (info): Double quote to prevent globbing and word splitting."],
    "eslint": ["  12:7  error  'total' is assigned a value but never used  no-unused-vars"],
    "golangci-lint": ["api/server.go:42:12: Error return value of `w.Write` is not checked (errcheck)"],
    "ktlint": ["/home/runner/work/a/a/app/src/main/java/a/LoginScreen.kt:34:1 Needless blank line(s) "
               "(standard:no-consecutive-blank-lines)",
               "src/main/kotlin/App.kt:3:1: Unused import (no-unused-imports)"],
    "detekt": ["\tLongMethod - [syncAll] at /home/runner/work/a/a/app/src/main/java/a/SyncManager.kt:61:9",
               "/home/runner/work/a/a/src/Sync.kt:61:9: The function syncAll is too long (65). [LongMethod]"],
    "prettier": ["[warn] src/pages/Settings.tsx", "[warn] src\\components\\DataTable.css"],
    "formatter": ["would reformat src/app.py", "Would reformat: app/main.py",
                  "[warn] Code style issues found in 2 files. Run Prettier with --write to fix.",
                  "Diff in /home/runner/work/a/a/src/main.rs at line 3:"],
    "pre-commit": ["ruff.....................................................................Failed",
                   "trim trailing whitespace.................................................Failed"],
    "eslint-summary": ["✖ 2 problems (1 error, 1 warning)", "✖ 1 problem (1 error, 0 warnings)"],
    "rustc": ["error[E0308]: mismatched types"],
    "tsc": ["src/config.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.",
            "src/pages/Profile.tsx:14:5 - error TS2304: Cannot find name 'fetchUser'.",
            "error TS5023: Unknown compiler option 'foo'."],
    "vite-noise": ["x Build failed in 6.21s", "error during build:"],
    "vite": ['[vite]: Rollup failed to resolve import "date-fns/locale/pt-BR" from "/home/runner/work/a/a/src/f.ts".',
             "Error: [vite:esbuild] Transform failed with 1 error:"],
    "rollup": ['src/pages/Export.tsx (3:9): "formatCsv" is not exported by "src/lib/csv.ts", imported by '
               '"src/pages/Export.tsx".'],
    "msbuild": ["/home/runner/work/a/a/Program.cs(12,5): error CS0103: The name 'x' does not exist in the current "
                "context [/home/runner/work/a/a/App.csproj]"],
    "javac": ["/home/runner/work/a/a/app/src/main/java/org/acme/App.java:9: error: cannot find symbol"],
    "maven-compile": ["[ERROR] /home/runner/work/a/a/src/main/java/com/acme/Calc.java:[12,16] cannot find symbol"],
    "kotlinc": ["e: file:///home/runner/work/a/a/app/src/main/kotlin/App.kt:12:5 Unresolved reference: foo"],
    "gcc": ["src/parser.c:42:9: error: 'token' undeclared (first use in this function)",
            "src/main.cpp:3:10: fatal error: 'fmt/core.h' file not found",
            "main.swift:7:5: error: cannot find 'foo' in scope"],
    "aapt": ["ERROR: /home/runner/work/a/a/app/src/main/res/layout/login.xml:42: AAPT: error: resource "
             "string/forgot (aka com.acme:string/forgot) not found."],
    "xcode-sandbox": ["error: Sandbox: rsync.samba(53876) deny(1) file-write-create /Users/runner/Library/Developer/"
                      "Xcode/DerivedData/Acme-x/Build/Products/Debug/Acme.app/Frameworks/A.framework/.A.Xq3rT2"],
    "linker": ["main.c:(.text+0x15): undefined reference to `compute_mean'",
               "Undefined symbols for architecture arm64:", "collect2: error: ld returned 1 exit status"],
    "go-build": ["cmd/svc/main.go:12:9: undefined: newServer", "./x.go:3:2: \"os\" imported and not used"],
    "python-syntax": ["SyntaxError: invalid syntax", "    IndentationError: unexpected indent"],
    "python-import": ["ModuleNotFoundError: No module named 'click'",
                      "ImportError: cannot import name 'x' from 'y' (/usr/lib/python3/y.py)"],
    "node-module": ["Error: Cannot find module 'express'",
                    "    Cannot find module './components/Missing' from 'src/App.js'"],
    "npm-noise": ["npm ERR! code ELIFECYCLE", "npm ERR! code 1", "npm ERR! command sh -c jest",
                  "npm ERR! A complete log of this run can be found in: /home/runner/.npm/_logs/x-debug-0.log"],
    "npm-404": ["npm ERR! 404 Not Found - GET https://registry.npmjs.org/@acme%2finternal-ui - Not found"],
    "npm-ci-lockfile": ["npm ERR! `npm ci` can only install packages when your package.json and package-lock.json "
                        "or npm-shrinkwrap.json are in sync."],
    "npm-missing-script": ['npm ERR! Missing script: "lint"', 'npm error Missing script: "test"'],
    "npm": ["npm ERR! code ERESOLVE", "npm error code EUSAGE"],
    "pnpm-noise": [" ERR_PNPM_RECURSIVE_RUN_FIRST_FAIL  web@1.0.0 test: `vitest run`"],
    "pnpm": [" ERR_PNPM_OUTDATED_LOCKFILE  Cannot install with \"frozen-lockfile\" because pnpm-lock.yaml is not "
             "up to date with package.json"],
    "yarn-noise": ["error Command failed with exit code 1."],
    "yarn": ["error Your lockfile needs to be updated, but yarn was run with `--frozen-lockfile`.",
             'error Couldn\'t find package "left-pad@^9.0.0" required by "web@1.0.0" on the "npm" registry.'],
    "yarn-berry": ["➤ YN0028: │ The lockfile would have been modified by this install, which is explicitly "
                   "forbidden."],
    "pip-not-found": ["ERROR: Could not find a version that satisfies the requirement acme-sdk==4.2.0 "
                      "(from versions: 3.0.0, 4.1.0)"],
    "pip-no-distribution": ["ERROR: No matching distribution found for acme-sdk==4.2.0"],
    "pip-conflict": ["ERROR: Cannot install -r requirements.txt (line 2) and urllib3==2.2.1 because these package "
                     "versions have conflicting dependencies."],
    "pip-resolution": ["ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/en/latest/topics/"],
    "pip-build": ["ERROR: Failed building wheel for psycopg2", "  ERROR: Failed to build lxml"],
    "pip": ["ERROR: Could not open requirements file: [Errno 2] No such file or directory: 'req.txt'"],
    "python-resolver": ["  × No solution found when resolving dependencies:", "  × Failed to build `lxml==5.1.0`",
                        "SolverProblemError", "version solving failed."],
    "twine-file-exists": ["         File already exists ('acme_api-2.14.0-py3-none-any.whl', with blake2_256 hash "
                          "'0a1b'). See"],
    "twine": ["ERROR    HTTPError: 400 Bad Request from https://upload.pypi.org/legacy/",
              "ERROR    HTTPError: 403 Forbidden from https://test.pypi.org/legacy/"],
    "app-store": ['[10:01:02]: [Transporter Error Output]: ERROR ITMS-90186: "Invalid Pre-Release Train."',
                  ' [Application Loader Error Output]: ERROR ITMS-90186: "Invalid Pre-Release Train."'],
    "fastlane": ["[!] Error uploading ipa file, for more information see above",
                 "[!] Authentication credentials are missing or invalid. - Provide a properly configured token",
                 '[!] CocoaPods could not find compatible versions for pod "Alamofire":'],
    "apt": ["E: Unable to locate package libfoo-dev"],
    "docker-build": ['ERROR: failed to solve: process "/bin/sh -c npm ci" did not complete successfully: exit code: 1',
                     "failed to solve with frontend dockerfile.v0: failed to create LLB definition: x"],
    "docker-daemon": ["docker: Error response from daemon: pull access denied for acme/x, repository does not exist"],
    "pytest-assert": ["E       assert 401 == 200", "E   ModuleNotFoundError: No module named 'click'"],
    "assertion-error": ["AssertionError: 5 != 4",
                        "      AssertionError [ERR_ASSERTION]: Expected values to be strictly equal:"],
    "go-panic": ["panic: runtime error: index out of range [3] with length 3"],
    "go-test-package": ["FAIL\tgithub.com/acme/svc/config\t0.012s"],
    "rust-panic": ["thread 'main' panicked at src/main.rs:4:5:"],
    "maven-test-class": ["[ERROR] Tests run: 4, Failures: 1, Errors: 0, Skipped: 0, Time elapsed: 0.05 s <<< "
                         "FAILURE! -- in com.acme.CalculatorTest"],
    "jest-file": ["FAIL src/components/Button.test.tsx (5.2 s)", " FAIL  src/a.spec.js"],
    "vitest-file": [" ❯ src/utils/date.test.ts (3 tests | 1 failed) 12ms"],
    "cargo-noise": ["error: could not compile `acme` (bin \"acme\") due to 1 previous error",
                    "error: test failed, to rerun pass `--lib`"],
    "gradle-noise": ["FAILURE: Build failed with an exception.", "BUILD FAILED in 41s"],
    "gradle-task": ["Execution failed for task ':app:compileJava'."],
    "gradle-resolve": ["   > Could not resolve com.squareup.okhttp3:okhttp:4.12.0."],
    "gradle-task-failed": ["> Task :app:test FAILED"],
    "maven-goal": ["[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test "
                   "(default-test) on project calc: There are test failures."],
    "linkcheck-broken": ["(guides/deploy: line   17) broken    https://acme.dev/old - 404 Client Error: Not Found "
                         "for url: https://acme.dev/old"],
    "xcodebuild": ["xcodebuild: error: 'Acme.xcworkspace' does not exist."],
    "cocoapods-noise": ["[!] Automatically assigning platform `iOS` with version `15.0` on target `Acme` because no "
                        "platform was specified."],
    "cmake": ["CMake Error at CMakeLists.txt:12 (find_package):"],
    "tool-error": ["error: redundant clone", "error: failed to push some refs to 'https://github.com/a/b'"],
    "make": ["make: *** [Makefile:23: build/parser.o] Error 1", "make: *** No rule to make target 'lint'.  Stop."],
    "uncaught-exception": ["KeyError: 'port'", "TypeError: Cannot read properties of undefined (reading 'id')",
                           "java.lang.IllegalStateException: not started"],
    "node-error": ["Error: ENOENT: no such file or directory, open 'dist/index.html'"],
    "sphinx": ["/home/runner/work/a/a/docs/reference/orders.rst:88: WARNING: undefined label: 'refund-states' "
               "[ref.ref]", "/home/runner/work/a/a/src/acme/api.py:docstring of acme.api.get:3: ERROR: Unexpected "
               "indentation. [docutils]", "docs/index.rst:5: (ERROR/3) Unknown directive type \"foo\"."],
    "sphinx-problems": ["build finished with problems, 1 warning (with warnings treated as errors).",
                        "build finished with problems."],
    "eslint-warning": ["  27:6  warning  React Hook useEffect has a missing dependency: 'onTick'  "
                       "react-hooks/exhaustive-deps"],
    "eslint-max-warnings": ["ESLint found too many warnings (maximum: 0)."],
    "eslint-summary-warnings": ["✖ 1 problem (0 errors, 1 warning)", "✖ 3 problems (0 errors, 3 warnings)"],
    "exit-code": ["##[error]Process completed with exit code 1.", "Process completed with exit code 2."],
    "action-error": ["##[error]The version '3.14.0' with architecture 'x64' was not found for Ubuntu 22.04."],
    "catch-all": ["fatal: ambiguous argument 'v1.7.0..HEAD': unknown revision", "Build FAILED.",
                  "[error] something broke"],
}


def test_every_builtin_rule_has_examples_it_classifies():
    rules = load()
    assert set(EXAMPLES) == {rule.name for rule in rules}
    wrong = {}
    for name, lines in EXAMPLES.items():
        for line in lines:
            index = rules.classify(line)
            got = rules.rules[index].name if index is not None else None
            if got != name:
                wrong[line] = (got, name)
    assert not wrong


@pytest.mark.parametrize("line", [
    "Installing collected packages: Werkzeug, requests", "tests/test_errors.py::test_error_message PASSED",
    "OK: 3 entries (no errors found)", "remote: Total 41 (delta 3), reused 39 (delta 0), pack-reused 0",
    "Cache not found for input keys: pre-commit-x", "build succeeded, 2 warnings.",
    "hint: Using 'master' as the name for the initial branch.", "[INFO] BUILD SUCCESS", "ok  \tgithub.com/a/b\t0.1s",
    "test parser::tests::parses_numbers ... ok", "Successfully installed flask-3.0.2",
    "##[group]Run npm test", "PASS src/utils/format.test.ts (1.2 s)", "0 errors, 0 warnings",
    "(         api/orders: line   47) ok        https://docs.python.org/3/library/decimal.html",
    "[warn] jsxBracketSameLine is deprecated.", "✓ built in 7.31s", "Checking formatting...",
])
def test_ordinary_lines_match_no_rule(line):
    assert load().classify(line) is None, load().rules[load().classify(line)].name


def test_a_refused_local_connection_is_not_infra():
    """Errno 111 is usually a service the job failed to start; a network outage reads differently."""
    rules = load()
    refused = rules.rules[rules.classify("FAILED tests/test_api.py::test_health - requests.exceptions.ConnectionError:"
                                         " Failed to establish a new connection: [Errno 111] Connection refused")]
    outage = rules.rules[rules.classify("FAILED tests/test_api.py::test_health - requests.exceptions.ConnectionError:"
                                        " Failed to establish a new connection: [Errno -3] Temporary failure in name "
                                        "resolution")]
    assert (refused.name, refused.klass) == ("pytest", "test") and outage.klass == "infra"
