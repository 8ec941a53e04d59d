"""`python -m dashapp`: the development server; `python -m dashapp worker`: the processor alone.

The production server is gunicorn (`./run.sh`, `dashapp/gunicorn_conf.py`).  A worker applies the
inbox's deliveries for web processes started with PROCESSOR=off (or stands by while a web process
holds the processor), fetches the failed jobs' logs beside it (with GITHUB_TOKEN), and stops cleanly
on SIGTERM or Ctrl-C.
"""
import logging
import signal
import sys
import threading

from dashapp.config import Config


def serve() -> None:
    from dashapp import create_app

    config = Config.from_env()
    app = _start(lambda: create_app(config))
    app.run(host=config.host, port=config.port, debug=False, threaded=True)


def _start(make):
    """`make()`, or the exit with a one-line reason when the failure rules (FAILURE_RULES) or the alerts
    file (ALERTS_CONFIG) is bad."""
    from alerts.config import ConfigError
    from failures.rules import RulesError

    try:
        return make()
    except RulesError as exc:
        sys.exit(f"failure rules: {exc}")
    except ConfigError as exc:
        sys.exit(f"alerts: {exc}")
    except ValueError as exc:  # a setting that cannot be read (BILLING_MULTIPLIERS)
        sys.exit(str(exc))


def worker(args) -> None:
    import argparse
    import os

    from dashapp.services import Services

    parser = argparse.ArgumentParser(prog="python -m dashapp worker", description="Apply the inbox's deliveries.")
    parser.add_argument("--nice", type=int, default=0, help="lower this process's CPU priority by N")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the process that started it is gone (the server starts it so)")
    options = parser.parse_args(args)
    if options.nice:
        os.nice(options.nice)
    config = Config.from_env()
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = _start(lambda: Services.start(config, processor=False, pages=False))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    services.start_processor()
    if options.exit_with_parent:
        parent = os.getppid()
        while not stop.wait(1.0):
            if os.getppid() != parent:  # the server was killed: do not outlive it
                break
    else:
        stop.wait()
    logging.getLogger(__name__).info("worker: stopping after the current batch")
    services.close()


def main(argv=None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["worker"]:
        worker(args[1:])
    elif not args:
        serve()
    else:
        sys.exit("usage: python -m dashapp [worker]")


if __name__ == "__main__":
    main()
