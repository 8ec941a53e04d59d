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
