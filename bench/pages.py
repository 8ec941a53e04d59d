"""Time to first content of every page, in headless Chromium, under the filters a reader uses.

    python -m bench.pages --db /tmp/1m.db            # every page, 5 loads per URL
    python -m bench.pages --db /tmp/1m.db --loads 3 --only /runners

For each page the reader's content is a set of sections (the Waterfall's grid, cards, KPI strip, chart
and build stream; Triage's five tables; ...).  A section is drawn when it holds something (a table,
a chart, an empty state), every chart in it has drawn its SVG and every ag-grid in it shows a row or
its no-rows overlay.  Time to first content is the time from navigation start until the last of the
page's sections was first drawn (or until a page-level notice was, such as "no such commit"),
measured in the page by a MutationObserver installed before any of the page's scripts run, and never
earlier than the first contentful paint.

Each URL is opened `--loads` times by a full navigation in one browser whose cache holds the app's
scripts (a reader going from page to page, or coming back), after one unmeasured warm-up load.
Printed per page: the median of its first URL (the page as the menu opens it), the median over its URLs'
medians, the p95 over all its loads, the slowest URL and the section drawn last.
`bench.views` prints the same table after its callback figures.
"""
import argparse
import json
import sqlite3
import statistics
import sys
import time
from urllib.parse import quote

# Per page (its path's first segment): the sections that make its first content.
SECTIONS = {
    "": ["#wf-grid", "#wf-cards", "#wf-kpis", "#wf-chart", "#wf-stream-section"],
    "triage": ["#tr-causes", "#tr-broken", "#tr-failures", "#tr-analysis", "#tr-flaky"],
    "developer": ["#dev-cards", "#dev-failures", "#dev-unfixed", "#dev-history"],
    "failure": ["#fl-header", "#fl-occurrences"],
    "commit": ["#cm-content"],
    "pull": ["#pl-content"],
    "runners": ["#rn-labels", "#rn-waiting", "#rn-groups", "#rn-hours", "#rn-billing"],
    "alerts": ["#al-cards", "#al-open", "#al-messages", "#al-history", "#al-channels"],
}
NOTICE = "#react-entry-point .empty-state[id$='-notice'], #react-entry-point #pl-choices"

_WATCH = """
(function () {
  const sections = %s, notice = %s;
  function drawn(el) {
    if (!el || (!el.childElementCount && !el.textContent.trim())) return false;
    for (const g of el.querySelectorAll('.dash-graph')) if (!g.querySelector('.main-svg')) return false;
    for (const grid of el.querySelectorAll('.ag-root-wrapper'))
      if (!grid.querySelector('.ag-row:not(.ag-row-loading), .ag-overlay-no-rows-center')) return false;
    return true;
  }
  window.__sectionsSeen = {};
  function check() {
    if (window.__contentSeen) return;
    const page = location.pathname.split('/')[1] || '';
    const live = document.getElementById('react-entry-point');
    if (!live) return;
    const now = performance.now();
    for (const sel of sections[page] || [])
      if (!window.__sectionsSeen[sel] && drawn(live.querySelector(sel))) window.__sectionsSeen[sel] = now;
    const done = (sections[page] || []).every(sel => window.__sectionsSeen[sel]);
    if (done || document.querySelector(notice)) window.__contentSeen = now;
  }
  new MutationObserver(check).observe(document, {childList: true, subtree: true, characterData: true});
  document.addEventListener('DOMContentLoaded', check);
})();
""" % (json.dumps(SECTIONS), json.dumps(NOTICE))

_READ = """
const paint = performance.getEntriesByName('first-contentful-paint')[0];
return {content: window.__contentSeen || null, fcp: paint ? paint.startTime : null,
        sections: window.__sectionsSeen || {}};
"""


def page_urls(database: str) -> dict[str, list[str]]:
    """Per page, the URLs (with the filters a reader picks) to time, with names and keys read from the store."""
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        repos = [r for (r,) in db.execute(
            "SELECT repo FROM workflowruns GROUP BY repo ORDER BY count(*) DESC LIMIT 2")]
        newest = db.execute("SELECT max(createtime) FROM workflowruns").fetchone()[0] or 0
        author = db.execute(
            "SELECT author FROM workflowruns WHERE createtime >= ? - 7 * 86400 AND author IS NOT NULL"
            " GROUP BY author ORDER BY count(*) DESC LIMIT 1", (newest,)).fetchone()
        red = db.execute(
            "SELECT w.repo, c.hash FROM workflowruns w JOIN commits c ON c.id = w.commitid"
            " WHERE w.conclusion = 'failure' ORDER BY w.createtime DESC LIMIT 1").fetchone()
        pull = db.execute(
            "SELECT p.repo, p.number FROM run_pulls p JOIN workflowruns w ON w.gitid = p.run"
            " ORDER BY w.createtime DESC LIMIT 1").fetchone()
    finally:
        db.close()
    from bench.views import biggest_failure

    fingerprint = biggest_failure(database)
    windows = ("24h", "30d", "90d", "all")
    # Besides the windows: each of the two busiest repositories, then one of them narrowed to a workflow or
    # a branch (the Runners page reads every job for a branch).
    narrowed = f"repo={quote(repos[0])}&workflow=CI&window=90d" if repos else "window=90d"
    urls = {
        "Waterfall": ["/"] + [f"/?window={w}" for w in windows] + [f"/?repo={quote(r)}&window=30d" for r in repos]
                     + [f"/?{narrowed}"],
        "Triage": ["/triage"] + [f"/triage?window={w}" for w in windows] + [f"/triage?repo={quote(r)}" for r in repos]
                  + [f"/triage?{narrowed}"],
        "Runners": ["/runners"] + [f"/runners?window={w}" for w in windows]
                   + [f"/runners?repo={quote(r)}&window=30d" for r in repos]
                   + [f"/runners?repo={quote(r)}&branch=main&window=30d" for r in repos[:1]],
        "Alerts": ["/alerts"],
    }
    if author:
        urls["Developer"] = [f"/developer?author={quote(author[0])}"] + [
            f"/developer?author={quote(author[0])}&window={w}" for w in ("30d", "all")]
    if fingerprint:
        urls["Failure"] = [f"/failure/{fingerprint}?window=7d", f"/failure/{fingerprint}?window=30d",
                           f"/failure/{fingerprint}"]
    if red:
        urls["Commit"] = [f"/commit/{red[1]}?repo={quote(red[0])}", f"/commit/{red[1]}"]
    if pull:
        urls["Pull request"] = [f"/pull/{pull[1]}?repo={quote(pull[0])}"]
    return urls


def time_pages(base: str, urls: dict[str, list[str]], loads: int = 5, timeout: float = 30,
               sections: dict | None = None) -> dict:
    """{page: {url: [seconds to first content, ...]}}; None for a load whose content never came.

    `sections`, when given, receives {page: {section: [seconds it was first drawn, ...]}}."""
    from bench.views import _driver

    driver = _driver()
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": _WATCH})
    out = {}
    try:
        driver.get(base + "/")  # the warm-up: scripts and styles into the cache
        _wait(driver, timeout)
        for page, paths in urls.items():
            for path in paths:
                times = out.setdefault(page, {}).setdefault(path, [])
                for _ in range(loads):
                    driver.get(base + path)
                    marks = _wait(driver, timeout)
                    times.append(max(marks["content"], marks["fcp"] or 0) / 1000 if marks["content"] else None)
                    if sections is not None:
                        for section, at in marks["sections"].items():
                            sections.setdefault(page, {}).setdefault(section, []).append(at / 1000)
    finally:
        driver.quit()
    return out


def _wait(driver, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        marks = driver.execute_script(_READ)
        if marks["content"] or time.time() > deadline:
            return marks
        time.sleep(0.05)


def report(results: dict, store: str = "", sections: dict | None = None) -> None:
    """Per page: the median of its first URL (the page as the menu opens it), the median of its URLs' medians,
    the p95 and max over all its loads, the slowest URL and, with `sections`, the section drawn last (median
    over every load)."""
    print(f"time to first content{(' (' + store + ')') if store else ''}: seconds from navigation start")
    print(f"{'page':14} {'URLs':>4} {'opened':>7} {'median':>7} {'p95':>6} {'max':>6}  slowest URL (its median)"
          + ("; last section (its median)" if sections else ""))
    for page, per_url in results.items():
        medians = {url: statistics.median(t if None not in t else [float('inf')]) for url, t in per_url.items()}
        every = sorted(t if t is not None else float("inf") for times in per_url.values() for t in times)
        p95 = every[min(len(every) - 1, int(round(0.95 * (len(every) - 1))))]
        slowest = max(medians, key=medians.get)
        last = ""
        if sections and sections.get(page):
            name, times = max(sections[page].items(), key=lambda kv: statistics.median(kv[1]))
            last = f"; {name} ({statistics.median(times):.2f})"
        opened = medians[next(iter(per_url))]
        print(f"{page:14} {len(per_url):>4} {opened:7.2f} {statistics.median(medians.values()):7.2f} {p95:6.2f}"
              f" {every[-1]:6.2f}"
              f"  {slowest} ({medians[slowest]:.2f}){last}")


def main(argv=None) -> int:
    from bench.server import Server, free_port

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="an existing store")
    parser.add_argument("--loads", type=int, default=5, help="loads per URL")
    parser.add_argument("--only", action="append", help="only the URLs starting with this path (repeatable)")
    args = parser.parse_args(argv)
    urls = page_urls(args.db)
    if args.only:
        urls = {page: [u for u in paths if any(u.startswith(o) for o in args.only)] for page, paths in urls.items()}
        urls = {page: paths for page, paths in urls.items() if paths}
    sections = {}
    with Server(args.db, free_port(), secret="bench") as server:
        results = time_pages(server.url, urls, loads=args.loads, sections=sections)
    report(results, args.db, sections)
    return 0


if __name__ == "__main__":
    sys.exit(main())
