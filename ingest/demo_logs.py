"""The demo's failed jobs' GitHub Actions logs, and the failure lines the rules find in them.

`write_logs(engine, history, seed=, now=)` renders, for every job of a simulated
history (`ingest.demo._History`) that completed `failure` or `timed_out`, the
log GitHub would serve: timestamped lines, the "Set up job" preamble, each
step's `##[group]Run ...` header and output (checkout, setup-node...), the
failing step's tool output as the tool prints it (Jest, pytest, Playwright,
Gradle, xcodebuild, tsc, ESLint, mypy, ruff, Sphinx, npm, fastlane...) and
GitHub's own ending (`Process completed with exit code N.`, a timeout, a lost
or shut-down runner), plus the check-run annotations the job would have.  Each
log goes through the same extractor as a fetched one (`failures.extract`),
and `store.joblogs.save` records it with source "demo".

Which cause a failure shows (`ingest.demo_catalog.CAUSES`) is deterministic:
a real failure's cause is keyed by the first commit of its red streak (the
consecutive commits of its branch failing the same job and step), or by its
incident, so a broken trunk shows one fingerprint; a flaky failure's cause
rotates per run attempt; everything else that varies (times, durations,
process ids, temporary paths, line numbers) comes from a generator seeded by
the seed and the job, so the same seed gives the same lines.
"""
import hashlib
import random
import time
from dataclasses import dataclass

from failures.extract import extract, job_scope
from failures.rules import load
from ingest.demo_catalog import CAUSES, _Cause
from store.engine import writer_options
from store.joblogs import save

SAVES_PER_TRANSACTION = 200
FAILED = ("failure", "timed_out")
MIN = 60.0

_ACTIONS = {  # action -> (commit it resolves to, its `with:` inputs as the log prints them)
    "actions/checkout@v4": ("11bd71901bbe5b1630ceea73d27597364c9af683", (
        ("repository", "{repo}"), ("token", "***"), ("ssh-strict", "true"), ("ssh-user", "git"),
        ("persist-credentials", "true"), ("clean", "true"), ("sparse-checkout-cone-mode", "true"),
        ("fetch-depth", "1"), ("fetch-tags", "false"), ("show-progress", "true"), ("lfs", "false"),
        ("submodules", "false"), ("set-safe-directory", "true"))),
    "actions/setup-node@v4": ("39370e3970a6d050c480ffad4ff0ed4d3fdee5af", (
        ("node-version", "20"), ("cache", "npm"), ("always-auth", "false"), ("check-latest", "false"),
        ("token", "***"))),
    "actions/setup-python@v5": ("0b93645e9fea7318ecaed2b359559ac225c90a2b", (
        ("python-version", "3.12"), ("cache", "pip"), ("check-latest", "false"), ("token", "***"),
        ("update-environment", "true"), ("allow-prereleases", "false"))),
    "actions/setup-java@v4": ("8df1039502a15bceb9433410b1a100fbe190c53b", (
        ("distribution", "temurin"), ("java-version", "17"), ("java-package", "jdk"), ("check-latest", "false"),
        ("server-id", "github"), ("server-username", "GITHUB_ACTOR"), ("server-password", "GITHUB_TOKEN"),
        ("overwrite-settings", "true"), ("job-status", "success"), ("token", "***"))),
    "gradle/actions/setup-gradle@v4": ("cc4fc85e6b35bafd578d5ffbc76a5518407e1af0", (
        ("cache-disabled", "false"), ("cache-read-only", "false"), ("cache-write-only", "false"),
        ("gradle-home-cache-cleanup", "false"), ("add-job-summary", "always"))),
    "actions/download-artifact@v4": ("fa0a91b85d4f404e444e00e005971372dc801d16", (
        ("name", "{artifact}"), ("merge-multiple", "false"), ("repository", "{repo}"), ("run-id", "{run}"))),
    "pypa/gh-action-pypi-publish@release/v1": ("67339c736fd9354cd4f8cb0b744f2b82a74b5c70", (
        ("user", "__token__"), ("repository-url", "https://upload.pypi.org/legacy/"), ("packages-dir", "dist"),
        ("verify-metadata", "true"), ("skip-existing", "false"), ("verbose", "false"), ("attestations", "true"))),
}
# What each step runs: an action, or a script (and the npm script it starts, whose banner npm prints).
_STEPS = {
    "Checkout": ("uses", "actions/checkout@v4"),
    "Set up Node.js": ("uses", "actions/setup-node@v4"),
    "Set up Python": ("uses", "actions/setup-python@v5"),
    "Set up JDK 17": ("uses", "actions/setup-java@v4"),
    "Set up Gradle": ("uses", "gradle/actions/setup-gradle@v4"),
    "Download build artifact": ("uses", "actions/download-artifact@v4"),
    "Download dist": ("uses", "actions/download-artifact@v4"),
    "Publish to PyPI": ("uses", "pypa/gh-action-pypi-publish@release/v1"),
    "Select Xcode 15.4": ("run", "sudo xcode-select -s /Applications/Xcode_15.4.app"),
    ("acme/webapp", "Install dependencies"): ("run", "npm ci"),
    ("acme/api", "Install dependencies"): ("run", 'python -m pip install --upgrade pip\npip install -e ".[test]"'),
    ("acme/api", "Docs", "Install dependencies"): ("run", "pip install -r docs/requirements.txt -e ."),
    "Build": ("run", "npm run build", "build", "vite build"),
    ("acme/webapp", "Run tests"): ("run", "npm test -- --ci --coverage", "test", "jest --ci --coverage"),
    ("acme/api", "Run tests"): ("run", "python -m pytest --cov=acme_api --cov-report=xml"),
    "Run tsc": ("run", "npx tsc --noEmit"),
    "Run ESLint": ("run", "npm run lint"),
    "Check formatting": ("run", "npx prettier --check ."),
    "Install Playwright browsers": ("run", "npx playwright install --with-deps {browser}"),
    "Run Playwright tests": ("run", "npm run test:e2e -- --project={browser}", "test:e2e",
                             "playwright test --project={browser}"),
    "Run full test suite": ("run", "npm run test:full", "test:full", "jest --ci --runInBand --testTimeout=10000"),
    "Run benchmarks": ("run", "npm run bench -- --json bench/results.json", "bench",
                       "node bench/run.mjs --json bench/results.json"),
    "Compare with baseline": ("run", "curl -fsSL -o bench/baseline.json https://perf-baselines.acme.internal/webapp/"
                              "main.json\nnode scripts/compare-bench.mjs bench/baseline.json bench/results.json"),
    "Build wheel": ("run", "python -m pip install build\npython -m build --wheel"),
    "Start Postgres": ("run", "docker run -d --name pg -p 5432:5432 -e POSTGRES_PASSWORD=postgres postgres:16"),
    "Install ruff and mypy": ("run", "pip install ruff==0.8.1 mypy==1.13.0"),
    "Run ruff": ("run", "ruff check ."),
    "Run mypy": ("run", "mypy src"),
    "Build docs": ("run", "sphinx-build -W --keep-going -b html docs docs/_build/html"),
    "Check links": ("run", "sphinx-build -b linkcheck docs docs/_build/linkcheck"),
    "Build debug APK": ("run", "./gradlew assembleDebug --console=plain"),
    "Run unit tests": ("run", "./gradlew testDebugUnitTest --console=plain"),
    "Install CocoaPods": ("run", "pod install --repo-update"),
    "Build iOS app": ("run", "set -o pipefail\nxcodebuild -workspace Acme.xcworkspace -scheme Acme "
                      "-sdk iphonesimulator -configuration Debug build | tee xcodebuild.log"),
    "Run XCTest": ("run", "set -o pipefail\nxcodebuild test -workspace Acme.xcworkspace -scheme Acme -destination "
                   "'platform=iOS Simulator,name=iPhone 15,OS=17.5' | tee xcodebuild-test.log"),
    "Run ktlint": ("run", "./gradlew ktlintCheck --console=plain"),
    "Run detekt": ("run", "./gradlew detekt --console=plain"),
    "Upload to TestFlight": ("run", "bundle exec fastlane ios beta"),
}
_RUNNER_LOST = {
    True: "The hosted runner: {runner} lost communication with the server. Anything in your workflow that "
          "terminates the runner process, starves it for CPU/Memory, or blocks its network access can cause this "
          "error.",
    False: "The self-hosted runner: {runner} lost communication with the server. Verify the machine is running and "
           "has a healthy network connection. Anything in your workflow that terminates the runner process, starves "
           "it for CPU/Memory, or blocks its network access can cause this error.",
}
_SHUTDOWN = "The runner has received a shutdown signal. This can happen when the runner service is stopped, or a " \
            "manually started runner is canceled."
_WEB_TESTS = tuple(f"src/{d}/__tests__/{f}.test.{x}" for d, f, x in (
    ("components", "Button", "tsx"), ("components", "DataTable", "tsx"), ("components", "Modal", "tsx"),
    ("components", "Sidebar", "tsx"), ("hooks", "usePolling", "ts"), ("hooks", "useDebounce", "ts"),
    ("api", "client", "ts"), ("api", "retry", "ts"), ("auth", "login", "ts"), ("auth", "sso", "ts"),
    ("dashboard", "charts", "tsx"), ("dashboard", "filters", "ts"), ("settings", "profile", "tsx"),
    ("i18n", "format", "ts"), ("i18n", "plural", "ts"), ("export", "pdf", "ts"), ("ui", "theme", "ts"),
    ("session", "cookies", "ts"), ("utils", "dates", "ts"), ("utils", "money", "ts"), ("pages", "Orders", "tsx")))
_API_TESTS = ("tests/auth/test_tokens.py", "tests/auth/test_scopes.py", "tests/billing/test_invoices.py",
              "tests/billing/test_taxes.py", "tests/db/test_migrations.py", "tests/orders/test_create.py",
              "tests/orders/test_search.py", "tests/search/test_query.py", "tests/webhooks/test_signatures.py",
              "tests/test_health.py", "tests/test_pagination.py", "tests/test_settings.py")
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass
class _Job:
    """One failed job of the history and what its log needs to know."""
    gitid: int
    repo: str
    workflow: str
    name: str
    labels: tuple
    runner: str
    sha: str
    branch: str
    steps: list  # [number, name, start, end, conclusion], as simulated
    kind: str  # real | flaky | timeout
    step: str  # the failing step
    timeout: float  # the workflow's timeout, seconds
    key: str  # what picks the cause (see module docstring)


# --- from the history to the failed jobs ---------------------------------------------------------------


def failed_jobs(history, seed: int, now: float) -> list[_Job]:
    """Every job of `history` that completed failed or timed out by `now`, oldest first."""
    streaks = _streak_starts(history)
    out = []
    for c in history.commits:
        for plan in c.plans:
            for a in plan.attempts:
                for j in a.jobs:
                    if j.conclusion not in FAILED or j.end > now or id(j) not in history.job_ids:
                        continue
                    failing = next(s[1] for s in j.steps if s[4] == "failure")
                    kind = "timeout" if j.conclusion == "timed_out" else (j.fail[2] if j.fail else "real")
                    mode = (c.repo.name, plan.wf.name, j.jd.name, failing)
                    if kind == "real":
                        key = _incident(history, mode, plan.created) or \
                            f"streak:{streaks.get((c.repo.name, c.branch, plan.wf.name, j.jd.name, failing, c.sha))}"
                    else:
                        key = f"run:{c.sha}:{plan.created}:{a.number}"
                    out.append(_Job(history.job_ids[id(j)], c.repo.name, plan.wf.name, j.jd.name, j.jd.labels,
                                    j.runner[0], c.sha, c.branch, j.steps, kind, failing, plan.wf.timeout,
                                    f"{seed}:{':'.join(mode)}:{key}"))
    return sorted(out, key=lambda job: (job.steps[0][2], job.gitid))


def _streak_starts(history) -> dict:
    """(repo, branch, workflow, job, step, sha) -> the sha of the first commit of its red streak: walking the
    branch's commits that ran the workflow, oldest first, a real failure continues the streak of the commit
    before when that one failed at the same job and step."""
    by_branch: dict = {}
    for c in sorted(history.commits, key=lambda c: c.time):
        for plan in c.plans:
            by_branch.setdefault((c.repo.name, c.branch, plan.wf.name), {}).setdefault(c.sha, set()).update(
                (j.jd.name, next(s[1] for s in j.steps if s[4] == "failure"))
                for a in plan.attempts for j in a.jobs
                if j.conclusion == "failure" and j.fail and j.fail[2] == "real")
    out = {}
    for (repo, branch, workflow), commits in by_branch.items():
        starts: dict = {}
        for sha, fails in commits.items():  # insertion order: commit time
            starts = {mode: starts.get(mode, sha) for mode in fails}
            out.update({(repo, branch, workflow, *mode, sha): start for mode, start in starts.items()})
    return out


def _incident(history, mode: tuple, created: float) -> str | None:
    for repo, workflow, job, step, t0, length in history.incidents:
        if (repo, workflow, job, step) == mode and t0 <= created < t0 + length:
            return f"incident:{t0}"
    return None


def choose(job: _Job, pinned: dict | None = None) -> _Cause | None:
    """The cause `job`'s log shows (None for a timeout: the tool was still running)."""
    causes = CAUSES[(job.repo, job.workflow, job.name, job.step)]
    if job.kind == "timeout":
        return None
    for sha, name in (pinned or {}).items():
        # The story's streak shows its own cause; another job failing on the same commits keeps its mode's.
        if job.kind == "real" and job.key.endswith(f"streak:{sha}"):
            found = next((c for c in causes if c.name == name), None)
            if found is not None:
                return found
    pool = [c for c in causes if c.kind == job.kind] or list(causes)
    return random.Random(job.key).choices(pool, [c.weight for c in pool])[0]


# --- rendering ---------------------------------------------------------------------------------------


class _Ctx:
    """What varies within one job's log: paths of its OS, and numbers from its own generator."""

    def __init__(self, job: _Job, seed: int):
        self.job, self.rng = job, random.Random(f"demo-log:{seed}:{job.gitid}")
        self.os = "windows" if "windows-latest" in job.labels else \
            "macos" if any(label.startswith("macos") or label == "macOS" for label in job.labels) else "linux"
        self.hosted = "self-hosted" not in job.labels
        short = job.repo.split("/")[1]
        if not self.hosted:
            self.w = f"/Users/ci/actions-runner/_work/{short}/{short}" if self.os == "macos" else \
                f"/home/perf/actions-runner/_work/{short}/{short}"
        else:
            self.w = {"linux": f"/home/runner/work/{short}/{short}", "windows": f"D:\\a\\{short}\\{short}",
                      "macos": f"/Users/runner/work/{short}/{short}"}[self.os]
        self.temp = {"windows": "D:\\a\\_temp"}.get(self.os, self.w.rsplit("/", 2)[0] + "/_temp")
        # The code moves between commits: a cause's line numbers drift, the same on every re-run of a commit.
        self.drift = int(hashlib.sha1(job.sha.encode()).hexdigest()[:4], 16) % 9
        self.browser = "firefox" if "firefox" in job.name else "chromium"
        self.collected = (0, 0)  # pytest's (items, skipped), once its progress is printed

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def path(self, p: str) -> str:
        return p.replace("/", "\\") if self.os == "windows" else p

    def values(self, cause: _Cause, when: float) -> dict:
        """The template fields of `cause` (see ingest/demo_catalog.py)."""
        rng, a = self.rng, cause.arg
        site = "C:\\hostedtoolcache\\windows\\Python\\3.12.7\\x64\\Lib\\site-packages" if self.os == "windows" else \
            "/opt/hostedtoolcache/Python/3.12.7/x64/lib/python3.12/site-packages"
        test_file = a.get("nodeid", "").split("::")[0]
        slow = rng.uniform(20, 60)
        return {
            "w": self.w, "L": a.get("line", 1) + self.drift, "f": self.path(test_file), "site": site,
            "uuid": self.uuid(), "pid": rng.randint(1800, 64000), "tid": rng.randint(10000, 99999), "hex": self.hex(12),
            "hex64": self.hex(64), "addr": f"0x{rng.getrandbits(44) | 0x7f0000000000:x}",
            "secs": f"{rng.uniform(4, 14):.2f}", "ms": rng.randint(60000, 99999), "num": rng.randint(1000, 99999),
            "temp": self.temp, "stamp": f"{when - rng.uniform(0, 30):.6f}", "tests": rng.randint(180, 230),
            "stamp2": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(when)) + f".{rng.randint(0, 999):03d}",
            "npmlog": time.strftime("%Y-%m-%dT%H_%M_%S", time.gmtime(when)) + f"_{rng.randint(0, 999):03d}Z",
            # Xcode names DerivedData after a hash of the project's path: the same on every hosted runner.
            "derived": "/Users/runner/Library/Developer/Xcode/DerivedData/Acme-dqhzbmvkgwpsnxfrtacjuelyoiwb",
            "rsync": "".join(rng.choice(_ALNUM) for _ in range(6)),  # rsync's temporary file suffix
            "tmpmac": f"{self.hex(2)}/{self.hex(30)}", "checked": rng.randint(205, 240),
            "bench": f"{301.7 * (1 + slow / 100):.1f}", "pct": f"{slow:.1f}", "clock": time.strftime(
                "%H:%M:%S", time.gmtime(when)), "bundle": time.strftime("%Y.%m.%d_%H-%M-%S-0000", time.gmtime(when)),
        }


def render(job: _Job, cause: _Cause | None, seed: int) -> tuple[str, list]:
    """`job`'s log as GitHub serves it, and its check-run annotations."""
    ctx = _Ctx(job, seed)
    out: list = []  # (time, line)
    annotations: list = []
    ending = None
    for _, name, start, end, conclusion in job.steps:
        if conclusion == "skipped" or (name.startswith("Post ") and conclusion != "success"):
            continue
        header = []
        if name == "Set up job":
            lines = _setup_job(ctx)
        elif name == "Complete job":
            lines = ["Cleaning up orphan processes"]
        elif name.startswith("Post "):
            lines = ["Post job cleanup.", *_post(ctx, name[5:])]
        elif conclusion == "success":
            header, lines = _header(ctx, name), _ok(ctx, name)
        else:
            header = _header(ctx, name)
            lines, annotations, ending = _failing(ctx, cause, name)
        _stamp(ctx, out, header, lines, start, end)
        if ending == "lost":
            break
    text = "".join(f"{_ts(t)} {line}\n" for t, line in out)
    return text, annotations


def _ts(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e7):07d}Z"


def _stamp(ctx: _Ctx, out: list, header: list, lines: list, start: float, end: float) -> None:
    """Time a step's lines: its header as it starts, its output spread over its time, the last line at its end."""
    rng = ctx.rng
    t = max(start, out[-1][0] if out else start) + rng.uniform(0.001, 0.3)
    for line in header:
        t += rng.uniform(0.0001, 0.003)
        out.append((t, line))
    end = max(end + rng.uniform(0.0, 0.9), t + 0.01)
    times = sorted(rng.uniform(t, end) for _ in lines[1:]) + [end]
    out.extend(zip(times, lines))


def _setup_job(ctx: _Ctx) -> list:
    job, lines = ctx.job, ["Current runner version: '2.321.0'"]
    if ctx.hosted:
        system, image, version = {
            "linux": (("Ubuntu", "24.04.1", "LTS"), "ubuntu-24.04", "20241201.1.0"),
            "windows": (("Microsoft Windows Server 2022", "10.0.20348", "Datacenter"), "windows-2022", "20241201.1.0"),
            "macos": (("macOS", "14.7.1", "23H222"), "macos-14-arm64", "20241202.580")}[ctx.os]
        lines += ["##[group]Operating System", *system, "##[endgroup]", "##[group]Runner Image", f"Image: {image}",
                  f"Version: {version}", f"Image Release: https://github.com/actions/runner-images/releases/tag/"
                  f"{image.split('-')[0]}{image.split('-')[1][:2]}%2F{version}", "##[endgroup]",
                  "##[group]Runner Image Provisioner", "2.0.391.1", "##[endgroup]"]
    else:
        lines += [f"Runner name: '{job.runner}'", "Runner group name: 'Default'", f"Machine name: '{job.runner}'"]
    lines += ["##[group]GITHUB_TOKEN Permissions", "Contents: read", "Metadata: read", "##[endgroup]",
              "Secret source: Actions", "Prepare workflow directory", "Prepare all required actions",
              "Getting action download info"]
    used = dict.fromkeys(_step(job, s[1])[1] for s in job.steps if _step(job, s[1])[0] == "uses")
    lines += [f"Download action repository '{a.split('@')[0]}@{a.split('@')[1]}' (SHA:{_ACTIONS[a][0]})"
              for a in used]
    return lines + [f"Complete job name: {job.name}"]


def _step(job: _Job, name: str) -> tuple:
    return _STEPS.get((job.repo, job.workflow, name)) or _STEPS.get((job.repo, name)) or \
        _STEPS.get(name) or ("run", f"echo {name!r}")


def _header(ctx: _Ctx, name: str) -> list:
    spec, job = _step(ctx.job, name), ctx.job
    fields = {"repo": job.repo, "artifact": "dist" if "dist" in name else "build",
              "run": str(9_000_000_000 + job.gitid % 10_000_000), "browser": ctx.browser}
    if spec[0] == "uses":
        inputs = _ACTIONS[spec[1]][1]
        return [f"##[group]Run {spec[1]}", "with:", *(f"  {k}: {v.format(**fields)}" for k, v in inputs),
                "##[endgroup]"]
    script = spec[1].format(**fields).split("\n")
    shell = {"windows": 'C:\\Program Files\\PowerShell\\7\\pwsh.EXE -command ". \'{0}\'"',
             "macos": "/bin/bash -e {0}"}.get(ctx.os, "/usr/bin/bash -e {0}")
    lines = [f"##[group]Run {script[0]}", *(f"\x1b[36;1m{s}\x1b[0m" for s in script), f"shell: {shell}"]
    if name.startswith("Run") and job.repo == "acme/webapp":
        lines += ["env:", "  CI: true"]
    lines.append("##[endgroup]")
    if len(spec) > 2:  # an npm script: npm echoes it first
        lines += ["", f"> webapp@1.0.0 {spec[2]}", f"> {spec[3].format(**fields)}", ""]
    return lines


def _post(ctx: _Ctx, action_step: str) -> list:
    git = _git(ctx)
    if action_step == "Checkout":
        return [f"{git} version", "git version 2.47.1",
                f"Temporarily overriding HOME='{ctx.temp}/{ctx.uuid()}' before making global git config changes",
                "Adding repository directory to the temporary git global config as a safe directory",
                f"{git} config --global --add safe.directory {ctx.w}",
                f"{git} config --local --name-only --get-regexp core\\.sshCommand",
                f"{git} config --local --name-only --get-regexp http\\.https\\:\\/\\/github\\.com\\/\\.extraheader",
                "http.https://github.com/.extraheader",
                f"{git} config --local --unset-all http.https://github.com/.extraheader"]
    if action_step in ("Set up Node.js", "Set up Python"):
        tool = "node-cache" if "Node" in action_step else "setup-python"
        return [f"Cache hit occurred on the primary key {tool}-{ctx.os.title()}-x64-{ctx.hex(64)}, not saving cache."]
    return []


def _git(ctx: _Ctx) -> str:
    return '"C:\\Program Files\\Git\\bin\\git.exe"' if ctx.os == "windows" else "/usr/bin/git"


def _ok(ctx: _Ctx, name: str) -> list:
    """A succeeding step's output, short."""
    job, rng, git = ctx.job, ctx.rng, _git(ctx)
    if name == "Checkout":
        return [f"Syncing repository: {job.repo}", "##[group]Getting Git version info",
                f"Working directory is '{ctx.w}'", f"{git} version", "git version 2.47.1", "##[endgroup]",
                f"Deleting the contents of '{ctx.w}'", "##[group]Initializing the repository",
                f"{git} init {ctx.w}", "##[endgroup]", "##[group]Fetching the repository",
                f"{git} -c protocol.version=2 fetch --no-tags --prune --no-recurse-submodules --depth=1 origin "
                f"+{job.sha}:refs/remotes/origin/{job.branch}", f"From https://github.com/{job.repo}",
                f" * [new ref]         {job.sha} -> origin/{job.branch}", "##[endgroup]",
                "##[group]Checking out the ref", f"{git} checkout --progress --force -B {job.branch} "
                f"refs/remotes/origin/{job.branch}", f"Switched to a new branch '{job.branch}'", "##[endgroup]",
                f"{git} log -1 --format=%H", job.sha]
    if name == "Set up Node.js":
        return ["Found in cache @ /opt/hostedtoolcache/node/20.18.1/x64", "##[group]Environment details",
                "node: v20.18.1", "npm: 10.8.2", "yarn: 1.22.22", "##[endgroup]",
                f"Cache Size: ~{rng.randint(90, 140)} MB ({rng.randint(90_000_000, 140_000_000)} B)",
                "Cache restored successfully", f"Cache restored from key: node-cache-{ctx.os.title()}-x64-npm-"
                f"{ctx.hex(64)}"]
    if name == "Set up Python":
        return ["Installed versions", "Successfully set up CPython (3.12.7)",
                f"Cache restored from key: setup-python-{ctx.os.title()}-x64-python-3.12.7-pip-{ctx.hex(64)}"]
    if name == "Set up JDK 17":
        return ["Installed distributions", "Resolved Java 17.0.13+11 from tool-cache", "Setting Java 17.0.13+11 as the "
                "default", "Creating toolchains.xml for JDK version 17 from temurin", "Java configuration:",
                "  Distribution: temurin", "  Version: 17.0.13+11",
                "  Path: /opt/hostedtoolcache/Java_Temurin-Hotspot_jdk/17.0.13-11/x64"]
    if name == "Set up Gradle":
        return ["Restoring Gradle User Home from cache", "Gradle User Home restored from cache key "
                f"gradle-home-v1|Linux|build-android[{ctx.hex(32)}]-{job.sha}"]
    if name == "Install dependencies" and job.repo == "acme/webapp":
        return ["npm warn deprecated inflight@1.0.6: This module is not supported, and leaks memory. Do not use it.",
                "", f"added {rng.randint(1260, 1320)} packages, and audited {rng.randint(1321, 1330)} packages in "
                f"{rng.randint(18, 45)}s", "", f"{rng.randint(200, 230)} packages are looking for funding",
                "  run `npm fund` for details", "", "found 0 vulnerabilities"]
    if name == "Install dependencies":
        return [f"Requirement already satisfied: pip in {ctx.path('/opt/hostedtoolcache/Python/3.12.7/x64')}",
                f"Obtaining file://{ctx.w}", "  Installing build dependencies: started",
                "  Installing build dependencies: finished with status 'done'",
                "Successfully installed acme-api-2.14.0.dev0 alembic-1.14.0 fastapi-0.115.6 httpx-0.28.1 "
                "psycopg-3.2.3 pydantic-2.10.3 pytest-8.3.4 pytest-cov-6.0.0 sqlalchemy-2.0.36"]
    if name in ("Download build artifact", "Download dist"):
        return ["Downloading single artifact", "Preparing to download the following artifacts:",
                f"- {'dist' if 'dist' in name else 'build'} (ID: {rng.randint(2_000_000_000, 2_400_000_000)}, "
                f"size: {rng.randint(40_000, 3_000_000)}, expected_digest: sha256:{ctx.hex(64)})",
                "Artifact download completed successfully.", "Total of 1 artifact(s) downloaded"]
    if name == "Install Playwright browsers":
        return [f"Downloading {ctx.browser.title()} 131.0 (playwright build v1466) from "
                f"https://playwright.azureedge.net/builds/{ctx.browser}/1466/{ctx.browser}-ubuntu-24.04.zip",
                "|■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■■| 100% of 86.5 MiB",
                f"{ctx.browser.title()} 131.0 (playwright build v1466) downloaded to "
                f"/home/runner/.cache/ms-playwright/{ctx.browser}-1466"]
    if name == "Start Postgres":
        return ["Unable to find image 'postgres:16' locally", "16: Pulling from library/postgres",
                f"Digest: sha256:{ctx.hex(64)}", "Status: Downloaded newer image for postgres:16", ctx.hex(64)]
    if name == "Install ruff and mypy":
        return ["Successfully installed mypy-1.13.0 mypy-extensions-1.0.0 ruff-0.8.1 typing-extensions-4.12.2"]
    if name == "Run ruff":
        return ["All checks passed!"]
    if name == "Build":
        return ["vite v5.4.11 building for production...", "transforming...",
                f"✓ {rng.randint(800, 830)} modules transformed.", "rendering chunks...",
                f"dist/assets/index-{ctx.hex(8)}.js   {rng.randint(600, 700)}.{rng.randint(10, 99)} kB",
                f"✓ built in {rng.uniform(5, 12):.2f}s"]
    if name == "Build docs":
        return ["Running Sphinx v8.1.3", "building [html]: targets for 41 source files that are out of date",
                "build succeeded.", "", "The HTML pages are in docs/_build/html."]
    if name == "Run benchmarks":
        return ["render large table (10k rows)  x 3.31 ops/sec ±1.92% (20 runs sampled)",
                "filter 50k rows  x 11.1 ops/sec ±0.84% (32 runs sampled)",
                "export CSV (100k rows)  x 2.01 ops/sec ±1.10% (14 runs sampled)", "wrote bench/results.json"]
    if name == "Build debug APK":
        return ["> Task :app:assembleDebug", "", f"BUILD SUCCESSFUL in {rng.randint(2, 4)}m {rng.randint(0, 59)}s",
                f"{rng.randint(38, 44)} actionable tasks: {rng.randint(30, 38)} executed, 6 from cache"]
    if name == "Install CocoaPods":
        return ["Analyzing dependencies", "Downloading dependencies", "Installing Alamofire (5.10.2)",
                "Installing KeychainAccess (4.2.2)", "Generating Pods project", "Integrating client project",
                "Pod installation complete! There are 14 dependencies from the Podfile and 19 total pods installed."]
    if name == "Build iOS app":
        return ["** BUILD SUCCEEDED **"]
    if name == "Run ktlint":
        return [f"BUILD SUCCESSFUL in {rng.randint(20, 50)}s"]
    return []  # ESLint, and the steps that print nothing


# --- the failing step: the tool's output and GitHub's ending ------------------------------------------


def _failing(ctx: _Ctx, cause: _Cause | None, step: str) -> tuple[list, list, str]:
    """The failing step's lines after its header, the job's annotations, and how it ended."""
    job = ctx.job
    causes = CAUSES[(job.repo, job.workflow, job.name, step)]
    progress_tool = next((c.tool for c in causes if c.tool in _PROGRESS), None)
    if cause is None:  # timed out: the tool was still going
        lines = _PROGRESS[progress_tool](ctx, cut=True) if progress_tool else []
        minutes = int(job.timeout // MIN)
        messages = [f"The job running on runner {job.runner} has exceeded the maximum execution time of "
                    f"{minutes} minutes.", "The operation was canceled."]
        return lines + [f"##[error]{m}" for m in messages], [_annotation(m) for m in messages], "timeout"
    a = cause.arg
    values = ctx.values(cause, next(s[2] for s in job.steps if s[1] == step))
    if cause.tool == "text":
        lead = a.get("progress") or (progress_tool if a.get("end") in ("lost", "shutdown") else None)
        lines = _PROGRESS[lead](ctx, cut=True) if lead else []
        lines += _prologue(ctx, a) + _fill(a["template"], values)
        notes = [_annotation(m, p, values["L"]) for p, m in a.get("annotations", ())]
        code = a.get("exit")
    else:
        lines, notes, code = _TOOLS[cause.tool](ctx, a, values)
    if a.get("end") == "lost":
        return lines, notes + [_annotation(_RUNNER_LOST[ctx.hosted].format(runner=job.runner))], "lost"
    if a.get("end") == "shutdown":
        messages = [_SHUTDOWN, "The operation was canceled."]
        return lines + [f"##[error]{m}" for m in messages], notes + [_annotation(m) for m in messages], "shutdown"
    message = f"Process completed with exit code {code}."
    return lines + [f"##[error]{message}"], notes + [_annotation(message)], "exit"


def _fill(template: str, values: dict) -> list:
    return template.lstrip("\n").format(**values).split("\n")


def _annotation(message: str, path: str = ".github", line: int = 1) -> dict:
    return {"path": path, "start_line": line, "end_line": line, "annotation_level": "failure", "title": "",
            "message": message}


def _prologue(ctx: _Ctx, a: dict) -> list:
    """What a tool prints before a `text` cause's error."""
    rng = ctx.rng
    if a.get("vite"):
        return ["vite v5.4.11 \x1b[32mbuilding for production...\x1b[39m", "transforming...",
                f"\x1b[32m✓\x1b[39m {rng.randint(780, 830)} modules transformed."]
    if a.get("sphinx") or a.get("linkcheck"):
        return ["Running Sphinx v8.1.3", "loading translations [en]... done", "making output directory... done",
                f"building [{'linkcheck' if a.get('linkcheck') else 'html'}]: targets for 41 source files that are "
                "out of date", "updating environment: [new config] 41 added, 0 changed, 0 removed",
                "reading sources... [100%] reference/webhooks", "looking for now-outdated files... none found",
                *([f"(         api/orders: line   {rng.randint(10, 99)}) \x1b[32mok        \x1b[39mhttps://"
                   "docs.python.org/3/library/decimal.html"] if a.get("linkcheck") else [])]
    return []


def _jest(ctx: _Ctx, a: dict, values: dict) -> tuple[list, list, int]:
    rng, path = ctx.rng, ctx.path
    lines = _jest_progress(ctx, cut=False)
    split = rng.randint(len(lines) // 3, len(lines))
    after = lines[split:]
    lines = lines[:split]
    file = a["file"]
    head, _, base = path(file).rpartition("\\" if ctx.os == "windows" else "/")
    lines.append(f"\x1b[0m\x1b[7m\x1b[1m\x1b[31m FAIL \x1b[39m\x1b[22m\x1b[27m\x1b[0m \x1b[2m{head}{path('/')}"
                 f"\x1b[22m\x1b[1m{base}\x1b[22m ({rng.uniform(1, 9):.3f} s)")
    lines.append(f"\x1b[1m\x1b[31m  \x1b[1m● \x1b[22m\x1b[1m{a['title']}\x1b[39m\x1b[22m")
    lines.append("")
    error = a["error"].format(**values).split("\n")
    lines += [f"    {e}" if e else "" for e in error] + [""]
    line, col = values["L"], a.get("col", 1)
    if not a.get("suite"):
        for i, code in enumerate(a["frame"]):
            n = line - 2 + i
            mark = ">" if i == 2 else " "
            lines.append(f"    {mark} {n:>2} |{' ' + code if code else ''}")
            if i == 2:
                lines.append(f"      {' ' * len(str(n))} | {' ' * (col - 1)}^")
        lines += ["", f"      \x1b[2mat {a.get('fn', 'Object.<anonymous>')} (\x1b[22m\x1b[2m\x1b[0m\x1b[36m"
                      f"{path(file)}\x1b[39m\x1b[0m\x1b[2m:{line}:{col})\x1b[22m", ""]
    lines += after
    suites, tests = rng.randint(60, 68), rng.randint(400, 440)
    skipped = rng.randint(0, 4)
    failed = 0 if a.get("suite") else 1
    lines += ["-------------------|---------|----------|---------|---------|-------------------",
              "File               | % Stmts | % Branch | % Funcs | % Lines | Uncovered Line #s ",
              "-------------------|---------|----------|---------|---------|-------------------",
              f"All files          |   {rng.uniform(84, 90):.2f} |    {rng.uniform(75, 82):.2f} |   "
              f"{rng.uniform(80, 88):.2f} |   {rng.uniform(84, 90):.2f} |                   ",
              "-------------------|---------|----------|---------|---------|-------------------",
              f"\x1b[1mTest Suites: \x1b[22m\x1b[1m\x1b[31m1 failed\x1b[39m\x1b[22m, \x1b[1m\x1b[32m{suites - 1} passed"
              f"\x1b[39m\x1b[22m, {suites} total",
              "\x1b[1mTests:       \x1b[22m" + ("\x1b[1m\x1b[31m1 failed\x1b[39m\x1b[22m, " if failed else "") +
              f"\x1b[1m\x1b[33m{skipped} skipped\x1b[39m\x1b[22m, \x1b[1m\x1b[32m{tests - failed - skipped} passed"
              f"\x1b[39m\x1b[22m, {tests} total",
              "\x1b[1mSnapshots:   \x1b[22m\x1b[1m\x1b[32m12 passed\x1b[39m\x1b[22m, 12 total",
              f"\x1b[1mTime:\x1b[22m        {rng.uniform(30, 90):.3f} s", "\x1b[2mRan all test suites\x1b[22m\x1b[2m."
              "\x1b[22m"]
    # Jest's github-actions reporter turns each failure into a check-run annotation.
    notes = [{"path": file, "start_line": 1 if a.get("suite") else line, "end_line": 1 if a.get("suite") else line,
              "annotation_level": "failure", "title": a["title"].replace(" › ", " > "),
              "message": "\n".join(error)}]
    return lines, notes, 1


def _jest_progress(ctx: _Ctx, cut: bool) -> list:
    rng, files = ctx.rng, list(_WEB_TESTS)
    rng.shuffle(files)
    lines = []
    for file in files[:rng.randint(8, len(files))]:
        head, _, base = ctx.path(file).rpartition("\\" if ctx.os == "windows" else "/")
        slow = f" ({rng.uniform(5, 12):.3f} s)" if rng.random() < 0.2 else ""
        lines.append(f"\x1b[0m\x1b[7m\x1b[1m\x1b[32m PASS \x1b[39m\x1b[22m\x1b[27m\x1b[0m \x1b[2m{head}"
                     f"{ctx.path('/')}\x1b[22m\x1b[1m{base}\x1b[22m{slow}")
    return lines[:rng.randint(1, len(lines))] if cut else lines


def _pytest(ctx: _Ctx, a: dict, values: dict) -> tuple[list, list, int]:
    rng, setup = ctx.rng, a.get("setup", False)
    nodeid = a["nodeid"]
    file, test = nodeid.split("::")
    lines = _pytest_progress(ctx, cut=False, failing=(file, "E" if setup else "F"))
    sep = (lambda ch, title: _sep(ch, title))
    lines += [sep("=", "ERRORS" if setup else "FAILURES"),
              sep("_", f"ERROR at setup of {test}" if setup else test), ""]
    lines += a["body"].format(**values).split("\n")
    lines += [sep("-", "coverage: platform " + ("win32" if ctx.os == "windows" else "linux") +
                  ", python 3.12.7-final-0"), "Coverage XML written to file coverage.xml", "",
              sep("=", "short test summary info"), f"{'ERROR' if setup else 'FAILED'} {nodeid} - {a['short']}"]
    total, skipped = ctx.collected
    passed, secs = total - skipped - 1, rng.uniform(60, 140)
    outcome = "1 error" if setup else "1 failed"
    counts = f"{passed} passed, {skipped} skipped, {outcome}" if setup else f"{outcome}, {passed} passed, " \
        f"{skipped} skipped"
    lines.append(_sep("=", f"{counts} in {secs:.2f}s (0:{int(secs // 60):02d}:{int(secs % 60):02d})"))
    return lines, [], 1


def _sep(ch: str, title: str, width: int = 80) -> str:
    """pytest's section rule: `title` centred in `ch` characters."""
    fill = max(2, (width - len(title) - 2) // 2)
    line = f"{ch * fill} {title} {ch * fill}"
    return line + ch * (width - len(line)) if len(line) < width else line


def _pytest_progress(ctx: _Ctx, cut: bool, failing: tuple | None = None) -> list:
    rng = ctx.rng
    win = ctx.os == "windows"
    files = list(_API_TESTS) + ([failing[0]] if failing else [])
    files = sorted(set(files))
    sizes = [rng.randint(8, 60) for _ in files]
    total = sum(sizes)
    lines = ["", _sep("=", "test session starts"),
             f"platform {'win32' if win else 'linux'} -- Python 3.12.7, pytest-8.3.4, pluggy-1.5.0",
             f"rootdir: {ctx.w}", "configfile: pyproject.toml", "testpaths: tests",
             "plugins: cov-6.0.0, anyio-4.7.0", f"collected {total} items", ""]
    done = skipped = 0
    for file, n in zip(files, sizes):
        marks = ["." if rng.random() > 0.02 else "s" for _ in range(n)]
        skipped += marks.count("s")
        if failing and file == failing[0]:
            marks[rng.randrange(n)] = failing[1]
        done += n
        text = f"{ctx.path(file)} {''.join(marks)}"
        lines.append(f"{text:<74} [{done * 100 // total:>3}%]")
    ctx.collected = (total, skipped)
    return lines[:rng.randint(10, len(lines))] if cut else lines


def _playwright(ctx: _Ctx, a: dict, values: dict) -> tuple[list, list, int]:
    rng, browser = ctx.rng, ctx.browser
    lines = _playwright_progress(ctx, cut=False, fail=True)
    title = f"[{browser}] › {a['spec']}:{a['line']}:{a['col']} › {a['title']}"
    error = [f"    {e}" if e else "" for e in a["error"].format(**values).split("\n")]
    frame = []
    for i, code in enumerate(a["frame"]):
        n = a["at"] - 2 + i
        frame.append(f"    {'>' if i == 2 else ' '} {n:>2} |{' ' + code if code else ''}")
        if i == 2:
            frame.append(f"       | {' ' * (a['ccol'] - 1)}^")
    where = f"        at {ctx.w}/e2e/{a['spec']}:{a['at']}:{a['ccol']}"
    lines += ["", f"\x1b[31m  1) {title} {'─' * max(4, 100 - len(title))}\x1b[39m", ""]
    lines += error + [""] + frame + ["", where, ""]
    lines += [f"    \x1b[31mRetry #1 {'─' * 88}\x1b[39m", ""] + error + [""] + frame + ["", where, ""]
    passed = rng.randint(130, 150)
    lines += ["\x1b[31m  1 failed\x1b[39m", f"    {title} {'─' * max(4, 100 - len(title))}",
              f"\x1b[33m  {rng.randint(1, 4)} skipped\x1b[39m", f"\x1b[32m  {passed} passed\x1b[39m\x1b[2m "
              f"({rng.uniform(5, 9):.1f}m)\x1b[22m"]
    return lines, [], 1


def _playwright_progress(ctx: _Ctx, cut: bool, fail: bool = False) -> list:
    rng = ctx.rng
    total = rng.randint(140, 160)
    marks = ["·" if rng.random() > 0.03 else "°" for _ in range(total)]
    if fail:
        marks[rng.randrange(total)] = "F"
    lines = ["", f"Running {total} tests using 2 workers"]
    lines += ["".join(marks[i:i + 80]) for i in range(0, total, 80)]
    if cut:
        return lines[:-1] + [lines[-1][:rng.randint(1, len(lines[-1]))]]
    return lines


_GRADLE_TASKS = ("preBuild UP-TO-DATE", "preDebugBuild UP-TO-DATE", "mergeDebugNativeDebugMetadata NO-SOURCE",
                 "checkKotlinGradlePluginConfigurationErrors SKIPPED", "generateDebugBuildConfig",
                 "checkDebugAarMetadata", "generateDebugResValues", "mapDebugSourceSetPaths", "generateDebugResources",
                 "mergeDebugResources", "packageDebugResources", "parseDebugLocalResources",
                 "createDebugCompatibleScreenManifests", "processDebugMainManifest", "processDebugManifest",
                 "processDebugManifestForPackage", "processDebugResources", "compileDebugKotlin",
                 "compileDebugJavaWithJavac", "compileDebugUnitTestKotlin", "testDebugUnitTest")


def _gradle(ctx: _Ctx, a: dict, values: dict) -> tuple[list, list, int]:
    rng, task = ctx.rng, a["task"]
    short = task.rsplit(":", 1)[1]
    lines = ["Starting a Gradle Daemon (subsequent builds will be faster)"] if rng.random() < 0.5 else []
    if short in _GRADLE_TASKS:
        for t in _GRADLE_TASKS[:_GRADLE_TASKS.index(short)]:
            lines.append(f"> Task :app:{t}" + (" FROM-CACHE" if rng.random() < 0.3 and " " not in t else ""))
    else:
        lines += ["> Task :app:runKtlintCheckOverMainSourceSet"] if "ktlint" in short else []
    lines.append(f"> Task {task}")
    lines += a["before"].lstrip("\n").format(**values).split("\n")
    lines += ["", f"> Task {task} FAILED", "", "FAILURE: Build failed with an exception.", "", "* What went wrong:",
              f"Execution failed for task '{task}'."]
    lines += a["what"].lstrip("\n").format(**values).split("\n")
    lines += ["", "* Try:", "> Run with --stacktrace option to get the stack trace.",
              "> Run with --info or --debug option to get more log output.",
              "> Run with --scan to get full insights.", "> Get more help at https://help.gradle.org.", "",
              f"BUILD FAILED in {rng.randint(1, 4)}m {rng.randint(0, 59)}s",
              f"{rng.randint(30, 44)} actionable tasks: {rng.randint(20, 30)} executed, "
              f"{rng.randint(4, 10)} from cache"]
    return lines, [], 1


def _xcodebuild(ctx: _Ctx, a: dict, values: dict) -> tuple[list, list, int]:
    rng, w = ctx.rng, ctx.w
    test = a.get("test")
    lines = ["Command line invocation:", "    /Applications/Xcode_15.4.app/Contents/Developer/usr/bin/xcodebuild "
             + ("test" if test else "build") + " -workspace Acme.xcworkspace -scheme Acme", "",
             "User defaults from command line:", "    IDEPackageSupportUseBuiltinSCM = YES", "", "Prepare packages", "",
             "ComputeTargetDependencyGraph", "note: Building targets in dependency order",
             f"note: Target dependency graph ({rng.randint(17, 21)} targets)", ""]
    if test:
        suite, method = test.split()
        when = values["stamp2"]
        case = f"-[AcmeTests.{suite} {method}]"
        lines += [f"Test Suite 'All tests' started at {when}.", f"Test Suite 'AcmeTests.xctest' started at {when}.",
                  f"Test Suite '{suite}' started at {when}.",
                  f"Test Case '-[AcmeTests.{suite} testInitialState]' started.",
                  f"Test Case '-[AcmeTests.{suite} testInitialState]' passed ({rng.uniform(0, 0.01):.3f} seconds).",
                  f"Test Case '{case}' started.",
                  f"{w}/{a['path']}:{values['L']}: error: {case} : {a['message']}",
                  f"Test Case '{case}' failed ({rng.uniform(0.5, 3):.3f} seconds).",
                  f"Test Suite '{suite}' failed at {when}.", f"Test Suite 'All tests' failed at {when}.",
                  f"\t Executed {values['tests']} tests, with 1 failure (0 unexpected) in {rng.uniform(30, 50):.3f} "
                  f"({rng.uniform(50, 52):.3f}) seconds", "", "", "Failing tests:", "\tAcmeTests:",
                  f"\t\t{suite}.{method}()", "", "** TEST FAILED **", ""]
        return lines, [_annotation(a["message"], a["path"], values["L"])], 65
    message = a["message"].format(**values)
    if a.get("path"):
        where = f"{w}/{a['path']}:{values['L']}:{a['col']}: error: {message}"
    else:
        where = f"error: {message}"
    lines += [where, "", "** BUILD FAILED **", "", "", "The following build commands failed:",
              f"\t{a['command'].format(**values)}", "(1 failure)"]
    notes = [_annotation(message, a["path"], values["L"])] if a.get("path") else []
    return lines, notes, 65


_TOOLS = {"jest": _jest, "pytest": _pytest, "playwright": _playwright, "gradle": _gradle, "xcodebuild": _xcodebuild}
_PROGRESS = {"jest": _jest_progress, "pytest": _pytest_progress, "playwright": _playwright_progress}


# --- into the store ----------------------------------------------------------------------------------


def write_logs(engine, history, *, seed: int, now: float, pinned: dict | None = None) -> int:
    """Render, extract and save the failure lines of every failed job of `history`; the number of jobs."""
    rules = load()
    saved = []
    for job in failed_jobs(history, seed, now):
        text, annotations = render(job, choose(job, pinned), seed)
        scope = job_scope(job.repo, job.workflow, job.name)
        extraction = extract(text, rules, annotations=annotations, job_scope=scope)
        saved.append((job.gitid, job.repo, extraction))
    with engine.connect().execution_options(**writer_options()) as conn:
        for i in range(0, len(saved), SAVES_PER_TRANSACTION):
            with conn.begin():
                for gitid, repo, extraction in saved[i:i + SAVES_PER_TRANSACTION]:
                    save(conn, gitid, repo, extraction, source="demo", now=now)
    return len(saved)
