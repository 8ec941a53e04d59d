"""What a server process holds for its lifetime: config, store, inbox, processor, log fetcher, hub and bus."""
import json
import logging
import threading
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from dashapp.config import Config
from dashapp.observability import Stats
from ingest.processor import Processor, ProcessorStats
from live.bus import LocalBus
from live.hub import Broadcaster, InProcessHub
from live.pgbus import PgBus
from store.engine import is_sqlite, make_engine
from store.inbox import Inbox, inbox_location
from store.migrate import upgrade

log = logging.getLogger(__name__)
LAG_SHOWN = 5.0  # seconds of processing lag from which the pages' live badge says how far behind
LAG_CHECK = 2.0  # seconds between looks at the lag while pages are open


def _alerts(config: Config):
    """The alert configuration of ALERTS_CONFIG, or None (a bad file raises alerts.config.ConfigError)."""
    if not config.alerts_config.strip():
        return None
    from alerts.config import load

    return load(config.alerts_config.strip(), github_token=config.github_token,
                github_api_url=config.github_api_url)


RERUN_DAYS = 30  # GitHub: "You can re-run a workflow up to 30 days after the initial run."


def _archiver(config: Config, engine):
    """The archive policy of ARCHIVE_AFTER_DAYS (store/archive.py), or None when everything is kept."""
    if config.archive_after_days <= 0:
        return None
    if config.archive_after_days < RERUN_DAYS + 1:
        log.warning("ARCHIVE_AFTER_DAYS=%g: GitHub re-runs a run up to %d days after it was created, and a report "
                    "of an archived run is not applied; %d or more keeps every re-run", config.archive_after_days,
                    RERUN_DAYS, RERUN_DAYS + 1)
    from store.archive import Archiver, location

    return Archiver(engine, location(config.database_path, config.archive_dir), config.archive_after_days)


@dataclass
class Services:
    config: Config
    engine: Engine
    inbox: Inbox
    hub: Broadcaster = field(default_factory=InProcessHub)
    stats: Stats | None = None
    processor: Processor | None = None
    bus: LocalBus | PgBus | None = None  # the other processes: on this machine (SQLite) or the store's
    rules: object = None  # failures.rules.Rules: the built-in failure rules and FAILURE_RULES
    fetcher: object = None  # ingest.joblogs.Fetcher, beside this process's processor (needs GITHUB_TOKEN)
    alerts: object = None  # alerts.config.AlertConfig from ALERTS_CONFIG, or None
    decider: object = None  # alerts.decide.Decider: the processor's and fetcher's decisions
    sender: object = None  # alerts.sender.Sender, beside this process's processor

    def __post_init__(self):
        if self.stats is None:
            self.stats = Stats(self.hub, self.inbox)

    @classmethod
    def start(cls, config: Config, *, processor: bool | None = None, pages: bool = True) -> "Services":
        """Open the store and inbox; run the processor here when `processor` (default: unless PROCESSOR=off;
        under gunicorn, `process` means a worker process of its own, `dashapp/gunicorn_conf.py`).  Without
        `pages` (`python -m dashapp worker`) the other processes' live messages are not read here."""
        from failures.rules import load

        # Read first: a bad FAILURE_RULES or ALERTS_CONFIG file stops the start with its error, in every process.
        rules = load(config.failure_rules or None)
        alerts = _alerts(config)
        from domain.billing import parse_multipliers

        try:
            parse_multipliers(config.billing_multipliers)
        except ValueError as exc:  # stops the start, as a bad rules file does
            raise ValueError(f"BILLING_MULTIPLIERS: {exc}") from None
        if 0 < config.archive_after_days < 1:  # stops the start, before anything is opened
            raise ValueError("ARCHIVE_AFTER_DAYS: at least 1 day, or 0 to keep everything")
        engine = make_engine(config.database_path, synchronous=config.sqlite_synchronous)
        upgrade(engine)
        box = Inbox(inbox_location(config.database_path, config.inbox_path), engine,
                    synchronous=config.sqlite_synchronous)
        services = cls(config=config, engine=engine, inbox=box, rules=rules, alerts=alerts)
        if alerts is not None:
            from alerts.decide import Decider

            # Decisions wait for failed jobs' failure lines (their verdicts) only when something fetches them.
            services.decider = Decider(alerts, hold=alerts.hold_seconds if services._fetches() else 0.0,
                                       stale_hours=config.stale_hours,
                                       dashboard_url=f"http://{config.host}:{config.port}")
        services.processor = Processor(engine, box, publish=services.publish, batch=config.processor_batch,
                                       stats=ProcessorStats(services.stats.registry),
                                       retention_days=config.raw_retention_days, alerts=services.decider,
                                       archiver=_archiver(config, engine))
        handlers = {"inbox": services.processor.wake}
        if pages:  # (on PostgreSQL a read of the store after every batch of every processor)
            handlers["live"] = services._publish_live
        if is_sqlite(engine):
            services.bus = LocalBus(box.rundir(), handlers)
        else:  # the processes may be on several hosts: the store carries their messages
            services.bus = PgBus(engine, handlers)
            services.processor.publish_in = services.bus.send_in  # with each batch, in commit order
        box.on_commit = services._inbox_committed
        if config.processor != "off" if processor is None else processor:
            services.start_processor()
        return services

    def start_processor(self) -> None:
        """Run the delivery processor here, and beside it the fetcher of failed jobs' logs and the
        sender of alerts (each works only while this process holds the processor)."""
        self.processor.start()
        self.fetcher = self._start_fetcher()
        if self.alerts is not None:
            from alerts.sender import Sender

            processor = self.processor
            self.sender = Sender(self.engine, self.alerts, active=lambda: processor.lock.held,
                                 publish=self.broadcast).start()

    def _fetches(self) -> bool:
        return self.config.log_fetch.strip().lower() != "off" and bool(self.config.github_token)

    def _start_fetcher(self):
        config = self.config
        if config.log_fetch.strip().lower() == "off":
            log.info("job logs: LOG_FETCH=off: failed jobs' logs are not fetched")
            return None
        if not config.github_token:
            log.warning("job logs: failure lines need GITHUB_TOKEN: failed jobs' logs are not fetched")
            return None
        from ingest.joblogs import Fetcher

        processor = self.processor
        # In thread mode every web process runs a processor thread and one at a time holds the inbox's
        # lock: only that one's fetcher works, so GitHub is asked once per job.
        return Fetcher(self.engine, token=config.github_token, api_url=config.github_api_url, rules=self.rules,
                       max_bytes=config.log_max_bytes, read_seconds=config.log_read_seconds,
                       tries=config.log_fetch_tries, publish=self.publish,
                       active=lambda: processor.lock.held,
                       decide=self.decider.job if self.decider is not None else None).start()

    def publish(self, messages: list, sent: bool = False) -> None:
        """Live messages of a committed batch: to every process's pages (`sent`: the other processes have
        them already, with the batch's commit); a job in them may have failed, so the fetcher looks at its
        queue now rather than at its next poll."""
        if sent:
            self._publish_local(messages)
        else:
            self.broadcast(messages)
        if self.fetcher is not None and any(m.get("type") == "job" for m in messages or ()):
            self.fetcher.wake()
        if self.sender is not None and any(m.get("type") == "alerts" for m in messages or ()):
            self.sender.wake()

    def broadcast(self, messages: list) -> None:
        """Live messages to this process's pages and every other process's."""
        self._publish_local(messages)
        if self.bus is not None:
            self.bus.send("live", messages)

    def _publish_live(self, body: bytes) -> None:
        """Another process's live messages, decoded only when this process has pages open."""
        if getattr(self.hub, "subscriber_count", 1):
            self._publish_local(json.loads(body))

    def _publish_local(self, messages) -> None:
        for message in messages or ():
            self.hub.publish(message)

    def _inbox_committed(self) -> None:
        self.processor.wake()
        self.bus.send("inbox")

    def watch_lag(self) -> None:
        """Tell this process's pages the processing lag while it is LAG_SHOWN or more (and once when it
        drops back), whichever process runs the processor, and even when none does."""
        self._stop_watch = threading.Event()

        def watch():
            shown = False
            while not self._stop_watch.wait(LAG_CHECK):
                if not getattr(self.hub, "subscriber_count", 1):
                    continue
                try:
                    lag = self.inbox.lag()
                except Exception:  # the store is unreachable: /healthz says so
                    continue
                if lag >= LAG_SHOWN or shown:
                    self.hub.publish({"type": "lag", "seconds": round(lag if lag >= LAG_SHOWN else 0.0, 1)})
                shown = lag >= LAG_SHOWN

        threading.Thread(target=watch, name="lag-watch", daemon=True).start()

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until every accepted delivery has been applied (tests; the processor must run somewhere)."""
        self.processor.settle(timeout)

    def close(self) -> None:
        if getattr(self, "_stop_watch", None) is not None:
            self._stop_watch.set()
        self.stats.sampler.stop()
        if self.fetcher is not None:
            self.fetcher.stop()
        if self.sender is not None:
            self.sender.stop()
        if self.processor is not None:
            self.processor.stop()
        if self.bus is not None:
            self.bus.close()
        self.inbox.close()
        self.engine.dispose()
