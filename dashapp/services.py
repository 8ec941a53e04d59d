"""What the server holds for its lifetime: config, engine, writer, hub."""
import logging
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from dashapp.config import Config
from dashapp.observability import Stats
from live.hub import Broadcaster, InProcessHub
from store.engine import make_engine
from store.migrate import upgrade
from store.writequeue import WriteQueue

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    engine: Engine
    writes: WriteQueue
    hub: Broadcaster = field(default_factory=InProcessHub)
    stats: Stats | None = None

    def __post_init__(self):
        if self.stats is None:
            self.stats = Stats(self.hub)

    @classmethod
    def start(cls, config: Config) -> "Services":
        engine = make_engine(config.database_path, synchronous=config.sqlite_synchronous)
        upgrade(engine)
        return cls(config=config, engine=engine, writes=WriteQueue(engine))
