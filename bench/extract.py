"""Failure extraction speed on big job logs (target: a 10 MB log in under 200 ms).

    python -m bench.extract              # 10 MB logs, median of 5
    python -m bench.extract --mb 50      # bigger logs
    python -m bench.extract --quick      # 1 MB, 2 repeats (a smoke run)

Two generated GitHub job logs, each fed to `failures.extract.Extractor` in 64 KB chunks as the fetcher reads
them: "quiet" is a long test run (timestamps, pytest progress, compiler and npm output, Docker layers) whose
failures come near the end; "noisy" is the same with one line in ten error-ish (logged ERRORs of passing tests,
warnings, retries, "error" in file names, assertion output of tests that later pass on retry), which is where a
line-by-line classifier would crawl.  Printed per log: size, median milliseconds, MB/s, the primary line.
"""
import argparse
import random
import statistics
import time

from failures.extract import Extractor
from failures.rules import load

CHUNK = 64 << 10

QUIET = [
    "tests/unit/test_{w}.py::test_{w}_{n} PASSED                                  [ {p}%]",
    "   Compiling {w}-{w} v0.{n}.{n}",
    "[{n}/{m}] Building CXX object CMakeFiles/app.dir/src/{w}.cpp.o",
    "#{n} [{n}/9] RUN pip install --no-cache-dir -r requirements.txt",
    "#{n} {t} Collecting {w}=={n}.{n}.{n}",
    "  Downloading {w}-{n}.{n}.{n}-py3-none-any.whl ({n}{n} kB)",
    "webpack compiled successfully in {n}{n}{n} ms",
    "ok  \tgithub.com/acme/{w}/{w}\t{t}s",
    "[INFO] Compiling {n}{n} source files with javac [debug target 21] to target/classes",
    "  ✓ {w} renders the {w} ({n} ms)",
    "{w}.go:{n}{n}: {w} {w} {w} processed {n}{n}{n} records in {t}s",
    "DEBUG {w}.{w}: request id={h} took {t}ms",
]
NOISY = [
    "ERROR    app.{w}:{w}.py:{n}{n} connection refused by {w}-db, using the cache",
    "WARNING: {w} is deprecated and will be removed in {w} {n}.0",
    "npm WARN deprecated {w}@{n}.{n}.{n}: this library is no longer supported",
    "tests/unit/test_error_{w}.py::test_reports_error_{n} PASSED                   [ {p}%]",
    "  {w}/errors.py:{n}{n}: DeprecationWarning: error_callback is deprecated",
    "Retrying in {n} seconds (attempt {n}/5): connection reset by peer",
    "E   assert {n} == {n}  (the first try of test_{w}_{n}, passed on rerun)",
    "[ERROR] {w}: failed to load optional plugin {w}, continuing",
    "error_count={n} warning_count={n}{n}",
]
WORDS = "alpha beta gamma cart order user login parse render queue cache store index stream token".split()
FAILURES = """\
=================================== FAILURES ===================================
__________________________________ test_login __________________________________
E       assert 401 == 200
tests/test_api.py:14: AssertionError
=========================== short test summary info ============================
FAILED tests/test_api.py::test_login - assert 401 == 200
FAILED tests/test_cart.py::test_total_with_discount - assert 90 == 81
========================= 2 failed, 5123 passed in 612.40s =========================
##[error]Process completed with exit code 1."""


def make_log(size: int, noisy: bool, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    templates = QUIET + (NOISY * 1 if noisy else [])
    weights = [9] * len(QUIET) + ([len(QUIET)] * len(NOISY) if noisy else [])  # noisy: ~1 line in 10 error-ish
    weights = weights if noisy else None
    out, total, second = [], 0, 0
    fmt = "2024-03-01T{:02d}:{:02d}:{:02d}.{:07d}Z {}\n"
    while total < size:
        line = rng.choices(templates, weights)[0].format(
            w=rng.choice(WORDS), n=rng.randint(0, 9), m=rng.randint(10, 99), p=rng.randint(1, 99),
            t=f"{rng.random() * 9:.3f}", h=f"{rng.getrandbits(48):012x}")
        second += rng.random() < 0.05
        text = fmt.format(10 + second // 3600 % 12, second // 60 % 60, second % 60, rng.randrange(10**7), line)
        out.append(text)
        total += len(text)
    out.extend(fmt.format(11, 59, 59, i, line) for i, line in enumerate(FAILURES.split("\n")))
    return "".join(out).encode("utf-8")


def run(data: bytes, rules, repeat: int) -> tuple[list[float], list[float], object]:
    """Wall and CPU milliseconds of each repeat (CPU time is steadier when other processes share the machine)."""
    wall, cpu, extraction = [], [], None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        extractor = Extractor(rules)
        for i in range(0, len(data), CHUNK):
            extractor.feed(data[i:i + CHUNK])
        extraction = extractor.finish(job_scope="acme/app\x1fCI\x1ftest")
        wall.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    return wall, cpu, extraction


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=10.0, help="log size in MB (default 10)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 MB logs, 2 repeats")
    args = parser.parse_args(argv)
    size, repeat = (1 << 20, 2) if args.quick else (int(args.mb * (1 << 20)), args.repeat)
    rules = load()
    figures = []
    for name, noisy in (("quiet", False), ("noisy", True)):
        data = make_log(size, noisy)
        wall, cpu, extraction = run(data, rules, repeat)
        median, median_cpu = statistics.median(wall), statistics.median(cpu)
        figures.append({"log": name, "mb": len(data) / 1e6, "median_ms": median, "median_cpu_ms": median_cpu,
                        "mb_per_s": len(data) / 1e6 / (median / 1000), "primary": extraction.lines[0].text})
        print(f"{name:6} {len(data) / 1e6:5.1f} MB  median {median:6.1f} ms wall, {median_cpu:6.1f} ms CPU"
              f"  {figures[-1]['mb_per_s']:5.0f} MB/s  (wall: {', '.join(f'{t:.0f}' for t in wall)} ms)"
              f"  primary: {extraction.lines[0].text}")
    return figures


if __name__ == "__main__":
    main()
