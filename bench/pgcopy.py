"""Time `python -m store.copy` from a SQLite store into a throwaway PostgreSQL cluster, with its peak memory.

    python -m bench.pgcopy --db /tmp/copy100k.db                  # one copy, then its verification
    python -m bench.pgcopy --db /tmp/copy100k.db --interrupt 30   # Ctrl-C after 30 s, then the same command again

Starts a cluster (`tests/pg.py`: a temporary directory, a unix socket, no fsync) and an empty database,
runs the command under `/usr/bin/time -f "%e s %M kB"` (wall seconds, peak RSS) with its own output, and
stops the cluster.  Exits with the (last) command's status.
"""
import argparse
import os
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.pgcopy", description=__doc__.splitlines()[0])
    p.add_argument("--db", required=True, help="the SQLite store to copy")
    p.add_argument("--interrupt", type=float, metavar="SECONDS",
                   help="send SIGINT to a first copy after this long, then run the command again")
    args = p.parse_args(argv)
    sys.path.insert(0, ROOT)
    from tests.pg import Cluster

    cluster = Cluster().start()
    try:
        url = cluster.new_database(template="template0")  # bare: the copy migrates it
        command = [sys.executable, "-m", "store.copy", args.db, url]
        if args.interrupt is not None:
            # SIGINT as a terminal's Ctrl-C gives it, even when this script runs in the background (which
            # starts its children with SIGINT ignored).
            first = subprocess.Popen(command, cwd=ROOT,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            time.sleep(args.interrupt)
            first.send_signal(signal.SIGINT)
            print(f"first copy interrupted after {args.interrupt:g} s: exit {first.wait()}", flush=True)
        return subprocess.run(["/usr/bin/time", "-f", "%e s %M kB", *command], cwd=ROOT).returncode
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
