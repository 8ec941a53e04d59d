"""The demo's catalogue: what its repositories run and what its people write.

Data for `ingest.demo`: workflows with their jobs, steps and failure modes,
the repositories and their teams, and commit message parts.
"""
from dataclasses import dataclass

MIN = 60.0


# --- what the repositories run ---------------------------------------------

POST_ACTIONS = ("Checkout", "Set up Node.js", "Set up Python", "Set up JDK 17", "Set up Gradle")


@dataclass(frozen=True)
class _JobDef:
    name: str
    labels: tuple
    steps: tuple  # (name, typical seconds)
    needs: tuple = ()
    default_only: bool = False  # skipped on other branches (`if: github.ref == ...`)


@dataclass(frozen=True)
class _WfDef:
    name: str
    file: str
    on: tuple  # push (default branch), pr (other branches), schedule, dispatch
    jobs: tuple
    modes: tuple  # (job, step, kind, weight); kind: real | flaky | timeout
    fail_p: float
    sigma: float = 0.25
    timeout: float = 30 * MIN
    skip_bots: bool = False


def _job(name, labels, *steps, needs=(), slow=1.0, default_only=False):
    return _JobDef(name, tuple(labels.split()), tuple((n, s * slow) for n, s in steps), tuple(needs), default_only)


CHECKOUT, NODE, NPM = ("Checkout", 3), ("Set up Node.js", 5), ("Install dependencies", 40)
PY, PIP = ("Set up Python", 8), ("Install dependencies", 35)
JDK, GRADLE, XCODE = ("Set up JDK 17", 15), ("Set up Gradle", 20), ("Select Xcode 15.4", 3)
WIN = 1.6  # Windows runners are slower at everything

WEB_CI = _WfDef("CI", "ci.yml", ("push", "pr"), (
    _job("build", "ubuntu-latest", CHECKOUT, NODE, NPM, ("Build", 75), ("Upload build artifact", 8)),
    _job("test (ubuntu-latest)", "ubuntu-latest", CHECKOUT, NODE, NPM, ("Download build artifact", 4),
         ("Run tests", 200), ("Upload coverage", 9), needs=("build",)),
    _job("test (windows-latest)", "windows-latest", CHECKOUT, NODE, NPM, ("Download build artifact", 4),
         ("Run tests", 190), ("Upload coverage", 9), needs=("build",), slow=WIN),
    _job("typecheck", "ubuntu-latest", CHECKOUT, NODE, NPM, ("Run tsc", 55)),
), (("test (windows-latest)", "Run tests", "flaky", 4), ("test (ubuntu-latest)", "Run tests", "real", 3),
    ("typecheck", "Run tsc", "real", 2), ("build", "Build", "real", 1), ("build", "Install dependencies", "flaky", 1)),
    fail_p=0.085)
WEB_LINT = _WfDef("Lint", "lint.yml", ("push", "pr"), (
    _job("lint", "ubuntu-latest", CHECKOUT, NODE, ("Install dependencies", 30), ("Run ESLint", 22),
         ("Check formatting", 7)),
), (("lint", "Run ESLint", "real", 3), ("lint", "Check formatting", "real", 2)), fail_p=0.06)
_E2E_STEPS = (CHECKOUT, NODE, NPM, ("Install Playwright browsers", 55), ("Download build artifact", 5))
WEB_E2E = _WfDef("E2E", "e2e.yml", ("push",), (
    _job("build-app", "ubuntu-latest", CHECKOUT, NODE, NPM, ("Build", 80), ("Upload build artifact", 10)),
    _job("e2e (chromium)", "ubuntu-latest", *_E2E_STEPS, ("Run Playwright tests", 640), ("Upload report", 12),
         needs=("build-app",)),
    _job("e2e (firefox)", "ubuntu-latest", *_E2E_STEPS, ("Run Playwright tests", 720), ("Upload report", 12),
         needs=("build-app",)),
), (("e2e (firefox)", "Run Playwright tests", "flaky", 5), ("e2e (chromium)", "Run Playwright tests", "flaky", 2),
    ("e2e (firefox)", "Run Playwright tests", "timeout", 2), ("build-app", "Build", "real", 1)),
    fail_p=0.13, sigma=0.3, timeout=30 * MIN)
WEB_NIGHTLY = _WfDef("Nightly", "nightly.yml", ("schedule",), (
    _job("full-suite (ubuntu-latest)", "ubuntu-latest", CHECKOUT, NODE, NPM, ("Run full test suite", 1300)),
    _job("full-suite (macos-latest)", "macos-latest", CHECKOUT, NODE, NPM, ("Run full test suite", 1300), slow=1.4),
    _job("benchmarks", "self-hosted linux x64 perf", CHECKOUT, NODE, NPM, ("Run benchmarks", 800),
         ("Compare with baseline", 20)),
), (("benchmarks", "Compare with baseline", "real", 3), ("full-suite (macos-latest)", "Run full test suite", "flaky", 2),
    ("full-suite (macos-latest)", "Run full test suite", "timeout", 1)), fail_p=0.2, timeout=60 * MIN)

API_CI = _WfDef("CI", "ci.yml", ("push", "pr"), (
    _job("build", "ubuntu-latest", CHECKOUT, PY, ("Build wheel", 25), ("Upload wheel", 5)),
    _job("test (ubuntu-latest)", "ubuntu-latest", CHECKOUT, PY, PIP, ("Start Postgres", 12), ("Run tests", 260),
         ("Upload coverage", 8)),
    _job("test (windows-latest)", "windows-latest", CHECKOUT, PY, PIP, ("Run tests", 250), slow=WIN),
    _job("lint", "ubuntu-latest", CHECKOUT, PY, ("Install ruff and mypy", 15), ("Run ruff", 5), ("Run mypy", 45)),
), (("test (windows-latest)", "Run tests", "flaky", 5), ("test (ubuntu-latest)", "Run tests", "real", 2),
    ("lint", "Run mypy", "real", 2), ("lint", "Run ruff", "real", 1), ("build", "Build wheel", "real", 1)),
    fail_p=0.09)
API_DOCS = _WfDef("Docs", "docs.yml", ("push", "pr"), (
    _job("build-docs", "ubuntu-latest", CHECKOUT, PY, PIP, ("Build docs", 70), ("Check links", 45),
         ("Upload pages artifact", 6)),
    _job("deploy", "ubuntu-latest", ("Deploy to GitHub Pages", 25), needs=("build-docs",), default_only=True),
), (("build-docs", "Check links", "flaky", 3), ("build-docs", "Build docs", "real", 1)), fail_p=0.05,
    skip_bots=True)
API_RELEASE = _WfDef("Release", "release.yml", ("dispatch",), (
    _job("build", "ubuntu-latest", CHECKOUT, PY, ("Build sdist and wheel", 30), ("Upload dist", 5)),
    _job("publish", "ubuntu-latest", ("Download dist", 4), ("Publish to PyPI", 20), ("Create GitHub release", 6),
         needs=("build",)),
), (("publish", "Publish to PyPI", "real", 1),), fail_p=0.05)

MOBILE_CI = _WfDef("CI", "ci.yml", ("push", "pr"), (
    _job("build (android)", "ubuntu-latest", CHECKOUT, JDK, GRADLE, ("Build debug APK", 260), ("Run unit tests", 150),
         ("Upload APK", 12)),
    _job("build (ios)", "macos-14", CHECKOUT, XCODE, ("Install CocoaPods", 60), ("Build iOS app", 420),
         ("Run XCTest", 240)),
), (("build (ios)", "Run XCTest", "flaky", 3), ("build (android)", "Run unit tests", "real", 2),
    ("build (ios)", "Build iOS app", "real", 1), ("build (android)", "Build debug APK", "real", 1)), fail_p=0.09)
MOBILE_LINT = _WfDef("Lint", "lint.yml", ("push", "pr"), (
    _job("lint", "ubuntu-latest", CHECKOUT, JDK, ("Run ktlint", 40), ("Run detekt", 50)),
), (("lint", "Run ktlint", "real", 2), ("lint", "Run detekt", "real", 1)), fail_p=0.06)
MOBILE_RELEASE = _WfDef("Release", "release.yml", ("dispatch",), (
    _job("build", "self-hosted macOS ARM64", CHECKOUT, XCODE, ("Build and sign", 600)),
    _job("upload", "ubuntu-latest", ("Upload to TestFlight", 120), needs=("build",)),
), (("upload", "Upload to TestFlight", "real", 1),), fail_p=0.05)


@dataclass(frozen=True)
class _Repo:
    name: str
    default: str
    share: float  # of the pull requests
    team: tuple  # (login, weight); the first is the maintainer
    workflows: tuple
    scopes: tuple
    deps: tuple  # (ecosystem, packages)

    @property
    def maintainer(self) -> str:
        return self.team[0][0]


REPOS = (
    _Repo("acme/webapp", "main", 0.45,
          (("octocat", 5), ("mona-lisa", 4), ("hubot", 3), ("sofia-r", 3), ("kenji-t", 2), ("dependabot[bot]", 1)),
          (WEB_CI, WEB_LINT, WEB_E2E, WEB_NIGHTLY), ("auth", "dashboard", "settings", "session", "ui", "export", "i18n"),
          ("npm_and_yarn", ("react", "eslint", "vite", "typescript", "@playwright/test", "axios"))),
    _Repo("acme/api", "main", 0.33,
          (("dev-priya", 5), ("jmarsh", 4), ("lbowen", 3), ("nat-the-cat", 3), ("octocat", 1), ("dependabot[bot]", 1)),
          (API_CI, API_DOCS, API_RELEASE), ("billing", "auth", "webhooks", "db", "orders", "rate-limit", "search"),
          ("pip", ("django", "requests", "pytest", "sqlalchemy", "ruff", "celery"))),
    _Repo("acme/mobile", "master", 0.22,
          (("kenji-t", 5), ("lbowen", 3), ("ana-ferreira", 3), ("hubot", 2), ("dependabot[bot]", 1)),
          (MOBILE_CI, MOBILE_LINT, MOBILE_RELEASE), ("android", "ios", "onboarding", "push", "offline", "login"),
          ("gradle", ("com.squareup.okhttp3:okhttp", "androidx.core:core-ktx", "io.coil-kt:coil"))),
)
_REPO = {repo.name: repo for repo in REPOS}

# --- what people write -----------------------------------------------------

KINDS = (("feat", 30), ("fix", 30), ("chore", 9), ("refactor", 10), ("docs", 7), ("test", 7), ("perf", 4), ("ci", 3))
SUBJECTS = {
    "feat": ("add dark mode toggle", "support CSV export", "add pagination to list views", "show last sync time",
             "add retry with exponential backoff", "allow filtering by date range", "add keyboard shortcuts",
             "support SSO login via SAML", "add bulk delete", "support multiple currencies", "add audit log"),
    "fix": ("handle empty responses", "avoid race when refreshing tokens", "correct timezone offset in reports",
            "prevent double submit", "close connections on shutdown", "restore scroll position after navigation",
            "handle 429 from upstream", "do not crash on missing avatar", "fix off-by-one in pagination",
            "escape HTML in notifications", "trim whitespace in search queries"),
    "chore": ("update dependencies", "remove unused feature flags", "tidy up logging", "rename internal helpers"),
    "refactor": ("extract validation into a module", "simplify state management", "split the settings page",
                 "replace moment with date-fns", "move the API client into its own package"),
    "docs": ("document the release process", "fix typos in README", "add architecture overview",
             "explain local setup on Windows", "update API examples"),
    "test": ("add regression test for login redirect", "speed up slow integration tests",
             "stabilize date-dependent tests", "cover error paths in the importer"),
    "perf": ("memoize expensive selectors", "batch database writes", "lazy-load heavy charts",
             "cut bundle size by 30%"),
    "ci": ("cache dependencies between jobs", "upload coverage reports", "pin action versions"),
}
FOLLOW_UPS = ("address review comments", "fix tests", "Apply suggestions from code review", "fix lint", "wip",
              "update snapshots", "handle the edge case from review", "rename variable")
BODIES = (
    "Previously this failed silently when the upstream returned an empty body.\nNow we log a warning and\n"
    "fall back to the cached value.",
    "The old code path is kept behind a feature flag for one release.",
    "BREAKING CHANGE: the `limit` parameter now defaults to 50.",
    "Measured locally: p90 went from 840 ms to 310 ms.",
)


# --- how they fail -----------------------------------------------------------
# Each failure mode of a workflow (job, step) has a few causes: the test, compiler error or outage
# its log shows (`ingest.demo_logs` renders them as the tools print them).  A real cause is a bug:
# every commit of a red streak shows the same one; a flaky cause passes on a re-run and rotates.
# In the templates {w} is the workspace, {L} the cause's line (it drifts from commit to commit),
# {f} the test file as the OS writes it, {site} site-packages, {derived} Xcode's DerivedData; {uuid} {pid}
# {hex} {rsync} {addr} {secs} and the like vary per job; literal braces are doubled.

@dataclass(frozen=True)
class _Cause:
    name: str
    kind: str  # real | flaky (which failures of the mode may show it)
    weight: int
    tool: str  # renderer in ingest/demo_logs.py: jest, pytest, playwright, gradle, xcodebuild, text
    args: tuple  # (name, value) pairs for the renderer

    @property
    def arg(self) -> dict:
        return dict(self.args)


def _cause(name, kind, weight, tool, **args) -> _Cause:
    return _Cause(name, kind, weight, tool, tuple(args.items()))


RUNNER_LOST = _cause("runner-lost", "flaky", 1, "text", end="lost", template="")
RUNNER_SHUTDOWN = _cause("runner-shutdown", "flaky", 1, "text", end="shutdown", template="")
NODE_HEAP = _cause("node-heap", "real", 1, "text", exit=134, template="""
<--- Last few GCs --->

[{pid}:{addr}]   {ms} ms: Mark-Compact 4043.1 (4136.2) -> 4027.6 (4137.0) MB, 1873.22 / 0.00 ms  \
(average mu = 0.108, current mu = 0.019) allocation failure; scavenge might not succeed


<--- JS stacktrace --->

FATAL ERROR: Ineffective mark-compacts near heap limit Allocation failed - JavaScript heap out of memory
----- Native stack trace -----

 1: 0xb8ced1 node::OOMErrorHandler(char const*, v8::OOMDetails const&) [node]
 2: 0xf06460 v8::Utils::ReportOOMFailure(v8::internal::Isolate*, char const*, v8::OOMDetails const&) [node]
 3: 0xf06747 v8::internal::V8::FatalProcessOutOfMemory(v8::internal::Isolate*, char const*, \
v8::OOMDetails const&) [node]
 4: 0x1118125  [node]
Aborted (core dumped)""")
VITE_RESOLVE = _cause("vite-resolve", "real", 2, "text", exit=1, vite=True, template="""
\x1b[31mx\x1b[39m Build failed in {secs}s
\x1b[31merror during build:
[vite]: Rollup failed to resolve import "date-fns/locale/pt-BR" from "{w}/src/i18n/format.ts".
This is most likely unintended because it can break your application at runtime.
If you do want to externalize this module explicitly add it to
`build.rollupOptions.external`\x1b[31m
    at viteWarn (file://{w}/node_modules/vite/dist/node/chunks/dep-BWSbWtLw.js:65589:17)
    at onwarn (file://{w}/node_modules/@vitejs/plugin-react/dist/index.mjs:104:9)
    at onRollupWarning (file://{w}/node_modules/vite/dist/node/chunks/dep-BWSbWtLw.js:65619:5)\x1b[39m""")
VITE_EXPORT = _cause("vite-export", "real", 2, "text", exit=1, vite=True, template="""
\x1b[31mx\x1b[39m Build failed in {secs}s
\x1b[31merror during build:
src/pages/Export.tsx ({L}:9): "formatCsv" is not exported by "src/lib/csv.ts", imported by "src/pages/Export.tsx".
file: \x1b[36m{w}/src/pages/Export.tsx:{L}:9\x1b[31m
    at getRollupError (file://{w}/node_modules/rollup/dist/es/shared/parseAst.js:395:41)
    at error (file://{w}/node_modules/rollup/dist/es/shared/parseAst.js:391:42)\x1b[39m""", line=3)

_TOKEN_TIMEOUT = dict(
    file="src/session/__tests__/tokenStore.test.ts", title="TokenStore › persists tokens across reloads",
    line=24, col=3, fn="it", error='thrown: "Exceeded timeout of 5000 ms for a test.\nAdd a timeout value to this '
    'test to increase the timeout, if this is a long-running test. See '
    'https://jestjs.io/docs/api#testname-fn-timeout."',
    frame=("  });", "", '  it("persists tokens across reloads", async () => {',
           "    const store = new TokenStore(storage);"))
WEB_UNIT_REAL = (
    # Weight 0: only the story's red streak shows it (ingest.demo.RED_STREAK: the commit that broke it).
    _cause("session-refresh", "real", 0, "jest", file="src/session/__tests__/middleware.test.ts",
           title="session middleware › refreshes an expired token before the request", line=57, col=56,
           error='expect(received).toBe(expected) // Object.is equality\n\nExpected: "Bearer fresh-token"\n'
                 'Received: "Bearer expired-token"',
           frame=('    const res = await request(app).get("/api/me").set("Cookie", expiredSession);', "",
                  '    expect(upstream.lastRequest.headers.authorization).toBe("Bearer fresh-token");', "  });")),
    _cause("csv-quotes", "real", 2, "jest", file="src/export/__tests__/csv.test.ts",
           title="toCsv › quotes values that contain commas", line=31, col=47,
           error='expect(received).toEqual(expected) // deep equality\n\nExpected: "\\"Smith, John\\",42"\n'
                 'Received: "Smith, John,42"',
           frame=('  it("quotes values that contain commas", () => {',
                  '    const rows = [{ name: "Smith, John", n: 42 }];',
                  '    expect(toCsv(rows, ["name", "n"]).split("\\n")[1]).toEqual(\'"Smith, John",42\');', "  });")),
    _cause("date-range", "real", 2, "jest", file="src/components/__tests__/DateRangePicker.test.tsx",
           title="DateRangePicker › keeps the end date after the start date", line=88, col=19,
           error="TestingLibraryElementError: Unable to find an element with the text: End date must be after "
                 "the start date. This could be because the text is broken up by multiple elements. In this case, "
                 "you can provide a function for your text matcher to make your matcher more flexible.",
           frame=('    await user.type(screen.getByLabelText("End date"), "2024-01-01");', "",
                  '    expect(screen.getByText("End date must be after the start date")).toBeInTheDocument();',
                  "  });")),
    _cause("jest-worker-killed", "real", 1, "jest", file="src/reports/__tests__/largeExport.test.ts",
           title="Test suite failed to run", suite=True,
           error="A jest worker process (pid={pid}) was terminated by another process: signal=SIGKILL, "
                 "exitCode=null. Operations that usually cause this are machine running out of memory or running "
                 "out of memory. This happens e.g. when memory-leaking test is run."),
)
WEB_UNIT_FLAKY = (
    _cause("token-store-timeout", "flaky", 3, "jest", **_TOKEN_TIMEOUT),
    _cause("upload-ebusy", "flaky", 2, "jest", file="src/upload/__tests__/chunkedUpload.test.ts",
           title="chunked upload › removes its temporary files after an abort", line=63, col=5,
           error="EBUSY: resource busy or locked, rmdir "
                 "'C:\\Users\\RUNNER~1\\AppData\\Local\\Temp\\webapp-upload-{hex}'",
           frame=("    controller.abort();", "    await settled(upload);",
                  "    await fs.rm(upload.tempDir, { recursive: true });", "    expect(existsSync(upload.tempDir))"
                  ".toBe(false);")),
    RUNNER_LOST,
)
TSC = tuple(_cause(name, "real", weight, "text", exit=2, template=f"{path}({{L}},{col}): error {code}: {message}",
                   annotations=((path, message),), line=line)
            for name, weight, path, line, col, code, message in (
    ("tsc-optional-string", 3, "src/components/DateRangePicker.tsx", 42, 7, "TS2322",
     "Type 'string | undefined' is not assignable to type 'string'."),
    ("tsc-request-init", 2, "src/api/client.ts", 118, 23, "TS2345",
     "Argument of type 'RequestInit | undefined' is not assignable to parameter of type 'RequestInit'."),
    ("tsc-missing-export", 1, "src/pages/Settings.tsx", 9, 10, "TS2305",
     "Module '\"../hooks/useSettings\"' has no exported member 'useSettingsForm'."),
))
NPM_NETWORK = (
    _cause("npm-econnreset", "flaky", 2, "text", exit=1, template="""
npm error code ECONNRESET
npm error syscall read
npm error errno ECONNRESET
npm error network request to https://registry.npmjs.org/@babel/core/-/core-7.26.0.tgz failed, reason: read ECONNRESET
npm error network This is a problem related to network connectivity.
npm error network In most cases you are behind a proxy or have bad network settings.
npm error network
npm error network If you are behind a proxy, please make sure that the
npm error network 'proxy' config is set properly.  See: 'npm help config'
npm error A complete log of this run can be found in: /home/runner/.npm/_logs/{npmlog}-debug-0.log"""),
    _cause("npm-eai-again", "flaky", 1, "text", exit=1, template="""
npm error code EAI_AGAIN
npm error syscall getaddrinfo
npm error errno EAI_AGAIN
npm error request to https://registry.npmjs.org/@types%2freact failed, reason: getaddrinfo EAI_AGAIN registry.npmjs.org
npm error A complete log of this run can be found in: /home/runner/.npm/_logs/{npmlog}-debug-0.log"""),
)
ESLINT = tuple(_cause(name, "real", weight, "text", exit=1, template=f"""
> webapp@1.0.0 lint
> eslint . --max-warnings 0


\x1b[4m{{w}}/{path}\x1b[24m
  \x1b[2m{{L}}:{col}\x1b[22m  {level}  {message}  \x1b[2m{rule}\x1b[22m

\x1b[31m\x1b[1m✖ 1 problem ({'1 error, 0' if 'error' in level else '0 errors, 1'} warnings)\x1b[22m\x1b[39m
{tail}""", annotations=((path, message),), line=line)
    for name, weight, path, line, col, level, message, rule, tail in (
    ("eslint-unused", 3, "src/components/DataTable.tsx", 12, 10, "\x1b[31merror\x1b[39m",
     "'useMemo' is defined but never used", "@typescript-eslint/no-unused-vars", ""),
    ("eslint-hook-deps", 2, "src/hooks/usePolling.ts", 27, 6, "\x1b[33mwarning\x1b[39m",
     "React Hook useEffect has a missing dependency: 'onTick'. Either include it or remove the dependency array",
     "react-hooks/exhaustive-deps", "\x1b[31mESLint found too many warnings (maximum: 0).\x1b[39m"),
    ("eslint-console", 1, "src/api/client.ts", 64, 5, "\x1b[31merror\x1b[39m", "Unexpected console statement",
     "no-console", ""),
))
PRETTIER = tuple(_cause(name, "real", 1, "text", exit=1, template="""
Checking formatting...
""" + "".join(f"\x1b[33m[warn]\x1b[39m {p}\n" for p in paths) + (
    "\x1b[33m[warn]\x1b[39m Code style issues found in the above file. Run Prettier with --write to fix."
    if len(paths) == 1 else
    f"\x1b[33m[warn]\x1b[39m Code style issues found in {len(paths)} files. Run Prettier with --write to fix."))
    for name, paths in (("prettier-settings", ("src/pages/Settings.tsx",)),
                        ("prettier-table", ("src/components/DataTable.tsx", "src/components/DataTable.css"))))
_PW = dict(spec="checkout.spec.ts", title="checkout › applies a discount code", line=41, col=5, at=45, ccol=54,
           error="Error: \x1b[2mexpect(\x1b[22m\x1b[31mlocator\x1b[39m\x1b[2m).\x1b[22mtoBeVisible\x1b[2m()\x1b[22m "
                 "failed\n\nLocator: getByText('Discount applied')\nExpected: visible\nTimeout: 5000ms\n"
                 "Error: element(s) not found\n\nCall log:\n\x1b[2m  - Expect \"toBeVisible\" with timeout 5000ms"
                 "\x1b[22m\n\x1b[2m  - waiting for getByText('Discount applied')\x1b[22m\n",
           frame=('    await page.getByLabel("Discount code").fill("WELCOME10");',
                  "    await page.getByRole('button', { name: 'Apply' }).click();",
                  "    await expect(page.getByText('Discount applied')).toBeVisible();", "  });"))
E2E_FLAKY = (
    _cause("pw-discount", "flaky", 3, "playwright", **_PW),
    _cause("pw-goto-refused", "flaky", 2, "playwright", spec="auth.spec.ts", title="login › signs in with SSO",
           line=18, col=3, at=19, ccol=16, error="Error: page.goto: NS_ERROR_CONNECTION_REFUSED\nCall log:\n"
           "\x1b[2m  - navigating to \"http://localhost:4173/login\", waiting until \"load\"\x1b[22m\n",
           frame=("", '  test("signs in with SSO", async ({ page }) => {', '    await page.goto("/login");',
                  '    await page.getByRole("button", { name: "Continue with SSO" }).click();')),
    _cause("pw-test-timeout", "flaky", 1, "playwright", spec="dashboard.spec.ts",
           title="dashboard › renders the charts",
           line=9, col=3, at=9, ccol=3, error="Test timeout of 30000ms exceeded.",
           frame=("", 'test.describe("dashboard", () => {', '  test("renders the charts", async ({ page }) => {',
                  '    await page.goto("/dashboard");')),
)
E2E_CHROMIUM = (
    _cause("pw-discount", "flaky", 2, "playwright", **_PW),
    _cause("pw-page-closed", "flaky", 2, "playwright", spec="settings.spec.ts", title="settings › saves the time zone",
           line=22, col=3, at=27, ccol=55, error="Error: locator.click: Target page, context or browser has been "
           "closed",
           frame=('    await page.getByLabel("Time zone").selectOption("Europe/Lisbon");', "",
                  '    await page.getByRole("button", { name: "Save" }).click();',
                  '    await expect(page).toHaveURL(/saved/);')),
)
BENCH = (
    _cause("bench-regression", "real", 3, "text", exit=1, template="""
benchmark                          baseline      current     change
render large table (10k rows)      301.7 ms      {bench} ms    +{pct}%  ✗
filter 50k rows                     88.2 ms       90.1 ms     +2.2%  ✓
export CSV (100k rows)             512.9 ms      498.3 ms     -2.8%  ✓
Error: 1 benchmark regressed by more than 10%: render large table (10k rows)
    at file://{w}/scripts/compare-bench.mjs:{L}:11
    at ModuleJob.run (node:internal/modules/esm/module_job:234:25)""", line=58),
    _cause("bench-dns", "real", 1, "text", exit=6, template="""
  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current
                                 Dload  Upload   Total   Spent    Left  Speed
  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0curl: (6) Could not resolve host: \
perf-baselines.acme.internal"""),
    _cause("bench-runner-lost", "real", 1, "text", end="lost", template=""),
)
FULL_SUITE = (
    _cause("token-store-timeout", "flaky", 2, "jest", **_TOKEN_TIMEOUT),
    _cause("node-heap", "flaky", 1, NODE_HEAP.tool, **NODE_HEAP.arg),
    RUNNER_SHUTDOWN,
)

_PY_PRORATE = """    def test_proration_rounds_half_up(plan_factory):
        plan = plan_factory(price=Decimal("31.00"), interval="month")
>       assert prorate(plan, days_used=10, days_in_period=30) == Decimal("10.34")
E       AssertionError: assert Decimal('10.33') == Decimal('10.34')
E        +  where Decimal('10.33') = prorate(<Plan pro-monthly 31.00 EUR>, days_used=10, days_in_period=30)

{f}:{L}: AssertionError"""
_PY_REFUND = """    def test_cancel_order_refunds_payment(db, order_factory):
        order = order_factory(status="paid")
>       cancel_order(db, order.id, reason="customer request")

{f}:{L}: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
src/acme_api/orders/service.py:212: in cancel_order
    db.delete(order)
{site}/sqlalchemy/orm/session.py:3498: in delete
    self._delete_impl(state, instance, head=True)
E   sqlalchemy.exc.IntegrityError: (psycopg.errors.ForeignKeyViolation) update or delete on table "orders" \
violates foreign key constraint "refunds_order_id_fkey" on table "refunds"
E   DETAIL:  Key (id)=({num}) is still referenced from table "refunds".
E   [SQL: DELETE FROM orders WHERE orders.id = %(id)s::INTEGER]
E   [parameters: {{'id': {num}}}]
E   (Background on this error at: https://sqlalche.me/e/20/gkpj)"""
_PY_DOCKER = """    @pytest.fixture(scope="session")
    def redis_url():
>       with RedisContainer("redis:7-alpine") as redis:

{f}:{L}: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
{site}/testcontainers/core/container.py:84: in start
    docker_client.pull(self.image)
{site}/docker/api/client.py:275: in _raise_for_status
    raise create_api_error_from_http_exception(e) from e
E   docker.errors.APIError: 500 Server Error for http+docker://localhost/v1.47/images/create?tag=7-alpine&\
fromImage=redis: Internal Server Error ("toomanyrequests: You have reached your pull rate limit. You may increase \
the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit")"""
API_UNIT_REAL = (
    _cause("proration-rounding", "real", 3, "pytest", nodeid="tests/billing/test_proration.py::"
           "test_proration_rounds_half_up", body=_PY_PRORATE, line=48,
           short="AssertionError: assert Decimal('10.33') == Decimal('10.34')"),
    _cause("refund-fk", "real", 2, "pytest", nodeid="tests/orders/test_cancel.py::test_cancel_order_refunds_payment",
           body=_PY_REFUND, line=31, short='sqlalchemy.exc.IntegrityError: (psycopg.errors.ForeignKeyViolation) update '
           'or delete on table "orders" violates foreign key constraint "refunds_order_id_fkey" on table "refunds"'),
    _cause("pytest-killed", "real", 1, "text", exit=137, progress="pytest", template="""
{temp}/{uuid}.sh: line 1:  {pid} Killed                  python -m pytest --cov=acme_api --cov-report=xml"""),
    _cause("docker-rate-limit", "real", 1, "pytest", nodeid="tests/cache/test_ttl.py::test_cache_entries_expire",
           setup=True, body=_PY_DOCKER, line=14, short="docker.errors.APIError: 500 Server Error for "
           "http+docker://localhost/v1.47/images/create?tag=7-alpine&fromImage=redis: Internal Server Error "
           '("toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating '
           'and upgrading: https://www.docker.com/increase-rate-limit")'),
)
_PY_TIMEOUT = """    def test_delivery_retries_after_a_timeout(webhook_server, delivery):
>       result = deliver(delivery, timeout=0.5)

{f}:{L}: 
_ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _ _
src\\acme_api\\webhooks\\deliver.py:58: in deliver
    response = client.post(delivery.url, content=body, headers=headers)
{site}\\httpx\\_transports\\default.py:118: in map_httpcore_exceptions
    raise mapped_exc(message) from exc
E   httpx.ReadTimeout: timed out"""
_PY_RACE = """    def test_sliding_window_admits_the_limit(limiter, clock):
        for _ in range(100):
            limiter.hit("client-1", now=clock())
>       assert limiter.count("client-1", now=clock()) == 100
E       AssertionError: assert 101 == 100
E        +  where 101 = <bound method SlidingWindow.count of <SlidingWindow limit=100 window=60s>>('client-1', \
now={stamp})

{f}:{L}: AssertionError"""
API_WIN = (
    _cause("webhook-read-timeout", "flaky", 3, "pytest", nodeid="tests/webhooks/test_delivery.py::"
           "test_delivery_retries_after_a_timeout", body=_PY_TIMEOUT, line=77, short="httpx.ReadTimeout: timed out"),
    _cause("rate-limit-race", "flaky", 2, "pytest", nodeid="tests/rate_limit/test_sliding_window.py::"
           "test_sliding_window_admits_the_limit", body=_PY_RACE, line=40, short="AssertionError: assert 101 == 100"),
    _cause("psycopg-dll", "real", 1, "text", exit=4, template="""
ImportError while loading conftest '{w}\\tests\\conftest.py'.
tests\\conftest.py:9: in <module>
    import psycopg
{site}\\psycopg\\__init__.py:9: in <module>
    from . import pq  # noqa: F401 import early to stabilize side effects
{site}\\psycopg\\pq\\__init__.py:114: in <module>
    import_from_libpq()
{site}\\psycopg\\pq\\__init__.py:106: in import_from_libpq
    raise ImportError(
E   ImportError: no pq wrapper available.
E   Attempts made:
E   - couldn't import psycopg 'c' implementation: DLL load failed while importing _psycopg: The specified module \
could not be found.
E   - couldn't import psycopg 'binary' implementation: No module named 'psycopg_binary'
E   - couldn't import psycopg 'python' implementation: libpq library not found"""),
    RUNNER_LOST,
)
MYPY = tuple(_cause(name, "real", weight, "text", exit=1, line=line, template=f"""
{path}:{{L}}: error: {message}
Found 1 error in 1 file (checked {{checked}} source files)""") for name, weight, path, line, message in (
    ("mypy-decimal", 2, "src/acme_api/billing/proration.py", 57,
     'Argument 1 to "quantize" of "Decimal" has incompatible type "float"; expected "Decimal"  [arg-type]'),
    ("mypy-optional", 2, "src/acme_api/orders/notify.py", 23,
     'Item "None" of "Customer | None" has no attribute "email"  [union-attr]'),
    ("mypy-return", 1, "src/acme_api/search/query.py", 88, "Missing return statement  [return]"),
))
RUFF = tuple(_cause(name, "real", weight, "text", exit=1, line=line, template=f"""
{path}:{{L}}:{col}: {code} {message}
  |
{frame}
  |
{help}
Found 1 error.{fix}""") for name, weight, path, line, col, code, message, frame, help, fix in (
    ("ruff-unused-import", 2, "src/acme_api/webhooks/deliver.py", 3, 8, "F401", "[*] `json` imported but unused",
     "1 | import hmac\n2 | import hashlib\n3 | import json\n  |        ^^^^ F401",
     "  = help: Remove unused import: `json`\n",
     "\n[*] 1 fixable with the `--fix` option."),
    ("ruff-none-compare", 1, "src/acme_api/orders/service.py", 140, 22, "E711",
     "Comparison to `None` should be `cond is None`", "    if order.refund == None:\n  |                     ^^^^ E711",
     "  = help: Replace with `cond is None`\n", "\nNo fixes available (1 hidden fix can be enabled with the "
     "`--unsafe-fixes` option)."),
))
WHEEL = (
    _cause("flat-layout", "real", 1, "text", exit=1, template="""
* Creating isolated environment: venv+pip...
* Installing packages in isolated environment:
  - setuptools>=69
* Getting build dependencies for wheel...
error: Multiple top-level packages discovered in a flat-layout: ['migrations', 'acme_api'].

To avoid accidental inclusion of unwanted files or directories,
setuptools will not proceed with this build.

ERROR Backend subprocess exited when trying to invoke get_requires_for_build_wheel"""),
)
SPHINX = (
    _cause("sphinx-undefined-label", "real", 2, "text", exit=1, sphinx=True, line=88, template="""
{w}/docs/reference/orders.rst:{L}: WARNING: undefined label: 'refund-states' [ref.ref]
build finished with problems, 1 warning (with warnings treated as errors)."""),
    _cause("sphinx-autodoc-import", "real", 1, "text", exit=1, sphinx=True, template="""
WARNING: autodoc: failed to import module 'search' from module 'acme_api'; the following exception was raised:
No module named 'opensearchpy' [autodoc.import_object]
build finished with problems, 1 warning (with warnings treated as errors)."""),
)
LINKCHECK = (
    _cause("link-read-timeout", "flaky", 2, "text", exit=1, linkcheck=True, line=42, template="""
(reference/webhooks: line {L}) \x1b[91mbroken    \x1b[39mhttps://docs.stripe.com/webhooks/signatures - \
HTTPSConnectionPool(host='docs.stripe.com', port=443): Read timed out. (read timeout=30)
build finished with problems."""),
    _cause("link-429", "flaky", 1, "text", exit=1, linkcheck=True, line=17, template="""
(guides/deploy: line {L}) \x1b[91mbroken    \x1b[39mhttps://github.com/acme/api/releases - 429 Client Error: \
Too Many Requests for url: https://github.com/acme/api/releases
build finished with problems."""),
    _cause("link-dns", "flaky", 1, "text", exit=1, linkcheck=True, line=9, template="""
(index: line {L}) \x1b[91mbroken    \x1b[39mhttps://status.acme-payments.com/ - HTTPSConnectionPool(\
host='status.acme-payments.com', port=443): Max retries exceeded with url: / (Caused by NameResolutionError(\
"<urllib3.connection.HTTPSConnection object at {addr}>: Failed to resolve 'status.acme-payments.com' ([Errno -3] \
Temporary failure in name resolution)"))
build finished with problems."""),
)
PYPI = (
    _cause("pypi-file-exists", "real", 2, "text", exit=1, template="""
Checking dist/acme_api-2.14.0-py3-none-any.whl: PASSED
Checking dist/acme_api-2.14.0.tar.gz: PASSED
Uploading distributions to https://upload.pypi.org/legacy/
Uploading acme_api-2.14.0-py3-none-any.whl
100% ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 61.2/61.2 kB • 00:00 • 134.1 MB/s
WARNING  Error during upload. Retry with the --verbose option for more details.
ERROR    HTTPError: 400 Bad Request from https://upload.pypi.org/legacy/
         File already exists ('acme_api-2.14.0-py3-none-any.whl', with blake2_256 hash '{hex64}'). See
         https://pypi.org/help/#file-name-reuse for more information."""),
    _cause("pypi-oidc", "real", 1, "text", exit=1, template="""
Checking for trusted publishing...
Error: Trusted publishing exchange failure:
OpenID Connect token retrieval failed: GitHub: missing or insufficient OIDC token permissions, the \
ACTIONS_ID_TOKEN_REQUEST_TOKEN environment variable was unset

This generally indicates a workflow configuration error, such as insufficient
permissions. Make sure that your workflow has `id-token: write` configured
at the job level, e.g.:

```yaml
permissions:
  id-token: write
```"""),
)

GRADLE_UNIT = (
    _cause("login-viewmodel", "real", 2, "gradle", task=":app:testDebugUnitTest", line=57, before="""
com.acme.mobile.login.LoginViewModelTest > emitsErrorWhenPasswordIsEmpty FAILED
    org.junit.ComparisonFailure at LoginViewModelTest.kt:{L}

{tests} tests completed, 1 failed""", what="""
> There were failing tests. See the report at: file://{w}/app/build/reports/tests/testDebugUnitTest/index.html"""),
    _cause("sync-worker-dispatcher", "real", 1, "gradle", task=":app:testDebugUnitTest", line=33, before="""
com.acme.mobile.sync.SyncWorkerTest > retriesWhenOffline FAILED
    java.lang.IllegalStateException at SyncWorkerTest.kt:{L}
        Caused by: java.lang.IllegalStateException at Dispatchers.kt:37

{tests} tests completed, 1 failed""", what="""
> There were failing tests. See the report at: file://{w}/app/build/reports/tests/testDebugUnitTest/index.html"""),
)
GRADLE_DAEMON = _cause("gradle-daemon-oom", "real", 1, "text", exit=1, template="""
> Task :app:mergeDebugJavaResource
> Task :app:dexBuilderDebug
Expiring Daemon because JVM heap space is exhausted
Daemon will be stopped at the end of the build after running out of JVM memory

FAILURE: Build failed with an exception.

* What went wrong:
Gradle build daemon disappeared unexpectedly (it may have been killed or may have crashed)

* Try:
> Run with --stacktrace option to get the stack trace.
> Run with --info or --debug option to get more log output.
> Run with --scan to get full insights.
> Get more help at https://help.gradle.org.""")
APK = (
    _cause("kotlin-unresolved", "real", 2, "gradle", task=":app:compileDebugKotlin", line=48, before="""
e: file://{w}/app/src/main/java/com/acme/mobile/sync/SyncWorker.kt:{L}:27 Unresolved reference 'lastSyncedAt'.""",
           what="""
> A failure occurred while executing org.jetbrains.kotlin.compilerRunner.GradleCompilerRunnerWithWorkers$\
GradleKotlinCompilerWorkAction
   > Compilation error. See log for more details"""),
    _cause("aapt-missing-string", "real", 1, "gradle", task=":app:processDebugResources", line=42, before="""
ERROR: {w}/app/src/main/res/layout/fragment_login.xml:{L}: AAPT: error: resource string/login_forgot_password \
(aka com.acme.mobile:string/login_forgot_password) not found.""", what="""
> A failure occurred while executing com.android.build.gradle.internal.res.LinkApplicationAndroidResourcesTask$\
TaskAction
   > Android resource linking failed
     ERROR: {w}/app/src/main/res/layout/fragment_login.xml:{L}: AAPT: error: resource \
string/login_forgot_password (aka com.acme.mobile:string/login_forgot_password) not found."""),
    GRADLE_DAEMON,
)
KTLINT = tuple(_cause(name, "real", weight, "gradle", task=":app:ktlintMainSourceSetCheck", line=line, before=f"""
{{w}}/app/src/main/java/com/acme/mobile/{path}:{{L}}:{col} {message}""", what="""
> A failure occurred while executing org.jlleitschuh.gradle.ktlint.worker.ConsoleReportWorkAction
   > KtLint found code style violations. Please see the following reports:
     - {w}/app/build/reports/ktlint/ktlintMainSourceSetCheck/ktlintMainSourceSetCheck.txt""")
    for name, weight, path, line, col, message in (
    ("ktlint-blank-lines", 2, "ui/LoginScreen.kt", 34, 1,
     "Needless blank line(s) (standard:no-consecutive-blank-lines)"),
    ("ktlint-unused-import", 1, "push/PushService.kt", 7, 1, "Unused import (standard:no-unused-imports)"),
))
DETEKT = tuple(_cause(name, "real", 1, "gradle", task=":app:detekt", line=line, before=f"""
{group}
\t{rule} - {detail} at {{w}}/app/src/main/java/com/acme/mobile/{path}:{{L}}:{col}

Overall debt: {debt}""", what="""
> Analysis failed with 1 weighted issues.""") for name, line, col, group, rule, detail, path, debt in (
    ("detekt-long-method", 61, 9, "complexity - 20min debt", "LongMethod", "[syncAll]", "sync/SyncManager.kt", "20min"),
    ("detekt-magic-number", 112, 37, "style - 10min debt", "MagicNumber", "[]", "offline/OfflineQueue.kt", "10min"),
))
IOS_BUILD = (
    _cause("swift-no-member", "real", 2, "xcodebuild", line=142, path="Acme/Sync/SyncManager.swift", col=23,
           message="value of type 'SyncState' has no member 'lastSyncedAt'", command="SwiftCompile normal arm64 "
           "Compiling\\ SyncManager.swift {w}/Acme/Sync/SyncManager.swift (in target 'Acme' from project 'Acme')"),
    _cause("xcode-sandbox-rsync", "real", 1, "xcodebuild", path=None,
           message="Sandbox: rsync.samba({pid}) deny(1) file-write-create {derived}/Build/Products/"
           "Debug-iphonesimulator/Acme.app/Frameworks/Alamofire.framework/.Alamofire.{rsync}",
           command="PhaseScriptExecution [CP]\\ Embed\\ Pods\\ Frameworks {derived}/Build/Intermediates.noindex/"
           "Acme.build/Debug-iphonesimulator/Acme.build/Script-9A2F1C7E4B3D8A6E5F0C1B2D.sh (in target 'Acme' from "
           "project 'Acme')"),
    _cause("swift-optional", "real", 1, "xcodebuild", line=57, path="Acme/Login/LoginView.swift", col=31,
           message="value of optional type 'String?' must be unwrapped to a value of type 'String'",
           command="SwiftCompile normal arm64 Compiling\\ LoginView.swift {w}/Acme/Login/LoginView.swift (in target "
           "'Acme' from project 'Acme')"),
)
XCTEST = (
    _cause("sync-expectation", "flaky", 3, "xcodebuild", test="SyncManagerTests testSyncRetriesAfterTimeout",
           path="AcmeTests/SyncManagerTests.swift", line=88, message="Asynchronous wait failed: Exceeded timeout of "
           "2 seconds, with unfulfilled expectations: \"sync completes\"."),
    _cause("offline-queue-race", "flaky", 2, "xcodebuild", test="OfflineQueueTests testFlushSendsEachItemOnce",
           path="AcmeTests/OfflineQueueTests.swift", line=51, message='XCTAssertEqual failed: ("3") is not equal to '
           '("2")'),
    _cause("simulator-boot", "flaky", 1, "text", exit=70, template="""
{stamp2} xcodebuild[{pid}:{tid}] Writing error result bundle to /var/folders/{tmpmac}/T/\
ResultBundle_{bundle}.xcresult
xcodebuild: error: Failed to prepare device 'iPhone 15' for testing.
	Underlying Error: Unable to boot the Simulator. launchd failed to respond. Try restarting your computer."""),
)
TESTFLIGHT = (
    _cause("testflight-version", "real", 2, "text", exit=1, template="""
[{clock}]: Ready to upload new build to TestFlight (App: 1584920311)...
[{clock}]: Going to upload updated app to App Store Connect
[{clock}]: This might take a few minutes. Please don't interrupt the script.
[{clock}]: [Transporter Error Output]: ERROR ITMS-90186: "Invalid Pre-Release Train. The train version '3.8.0' \
is closed for new build submissions"
[{clock}]: Error uploading ipa file:
 [Application Loader Error Output]: ERROR ITMS-90186: "Invalid Pre-Release Train. The train version '3.8.0' is \
closed for new build submissions"
[!] Error uploading ipa file, for more information see above"""),
    _cause("testflight-auth", "real", 1, "text", exit=1, template="""
[{clock}]: Creating authorization token for App Store Connect API
[!] Authentication credentials are missing or invalid. - Provide a properly configured and signed bearer token, \
and make sure that it has not expired. Learn more about Generating Tokens for API Requests \
https://developer.apple.com/go/?id=api-generating-tokens"""),
)

CAUSES = {
    ("acme/webapp", "CI", "test (ubuntu-latest)", "Run tests"): WEB_UNIT_REAL,
    ("acme/webapp", "CI", "test (windows-latest)", "Run tests"): WEB_UNIT_FLAKY,
    ("acme/webapp", "CI", "typecheck", "Run tsc"): TSC,
    ("acme/webapp", "CI", "build", "Build"): (VITE_RESOLVE, VITE_EXPORT, NODE_HEAP),
    ("acme/webapp", "CI", "build", "Install dependencies"): NPM_NETWORK,
    ("acme/webapp", "Lint", "lint", "Run ESLint"): ESLINT,
    ("acme/webapp", "Lint", "lint", "Check formatting"): PRETTIER,
    ("acme/webapp", "E2E", "build-app", "Build"): (VITE_RESOLVE, VITE_EXPORT),
    ("acme/webapp", "E2E", "e2e (firefox)", "Run Playwright tests"): E2E_FLAKY,
    ("acme/webapp", "E2E", "e2e (chromium)", "Run Playwright tests"): E2E_CHROMIUM,
    ("acme/webapp", "Nightly", "benchmarks", "Compare with baseline"): BENCH,
    ("acme/webapp", "Nightly", "full-suite (macos-latest)", "Run full test suite"): FULL_SUITE,
    ("acme/api", "CI", "test (ubuntu-latest)", "Run tests"): API_UNIT_REAL,
    ("acme/api", "CI", "test (windows-latest)", "Run tests"): API_WIN,
    ("acme/api", "CI", "lint", "Run mypy"): MYPY,
    ("acme/api", "CI", "lint", "Run ruff"): RUFF,
    ("acme/api", "CI", "build", "Build wheel"): WHEEL,
    ("acme/api", "Docs", "build-docs", "Build docs"): SPHINX,
    ("acme/api", "Docs", "build-docs", "Check links"): LINKCHECK,
    ("acme/api", "Release", "publish", "Publish to PyPI"): PYPI,
    ("acme/mobile", "CI", "build (android)", "Run unit tests"): GRADLE_UNIT + (GRADLE_DAEMON,),
    ("acme/mobile", "CI", "build (android)", "Build debug APK"): APK,
    ("acme/mobile", "CI", "build (ios)", "Build iOS app"): IOS_BUILD,
    ("acme/mobile", "CI", "build (ios)", "Run XCTest"): XCTEST,
    ("acme/mobile", "Lint", "lint", "Run ktlint"): KTLINT,
    ("acme/mobile", "Lint", "lint", "Run detekt"): DETEKT,
    ("acme/mobile", "Release", "upload", "Upload to TestFlight"): TESTFLIGHT,
}
