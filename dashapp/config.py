"""Settings: each declared once, with its environment variable, default and help.

README.md documents every one of them; a test checks that it does.
"""
import os
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    help: str


SETTINGS = {
    "database_path": Setting("DATABASE_PATH", "data/builds.db",
                             "SQLite file for the store, or a SQLAlchemy URL (e.g. postgresql://...)."),
    "webhook_secret": Setting("GITHUB_WEBHOOK_SECRET", "",
                              "Secret shared with the GitHub webhook; deliveries must carry its X-Hub-Signature-256."),
    "allow_unsigned": Setting("ALLOW_UNSIGNED_WEBHOOKS", "",
                              "Set to `loopback` to accept unsigned deliveries from 127.0.0.1/::1 when no secret is "
                              "set (the demo run does this); anything else refuses them."),
    "github_token": Setting("GITHUB_TOKEN", "", "Token for the REST API, used by init_db.py backfill."),
    "github_api_url": Setting("GITHUB_API_URL", "https://api.github.com",
                              "REST API base URL (GitHub Enterprise: https://HOST/api/v3)."),
    "host": Setting("HOST", "127.0.0.1", "Address the server listens on."),
    "port": Setting("PORT", "8050", "Port the server listens on."),
    "stale_hours": Setting("STALE_HOURS", "24",
                           "An unfinished run not updated for this many hours counts as stale, not active."),
    "sqlite_synchronous": Setting("SQLITE_SYNCHRONOUS", "FULL",
                                  "SQLite `synchronous` PRAGMA: FULL survives power loss, NORMAL only crashes."),
    "log_level": Setting("LOG_LEVEL", "INFO", "Python logging level."),
    "api_tokens": Setting("API_TOKENS", "",
                          "Comma-separated bearer tokens. When set (or DASHBOARD_USERS is), every route but "
                          "/webhook and /healthz needs `Authorization: Bearer TOKEN` or a dashboard login."),
    "dashboard_users": Setting("DASHBOARD_USERS", "",
                               "Comma-separated `user:password` pairs for the pages' login (HTTP basic auth; "
                               "use TLS in front)."),
    "api_rate_limit": Setting("API_RATE_LIMIT", "600/minute", "flask-limiter limit per client on /api/*."),
    "webhook_failure_limit": Setting("WEBHOOK_FAILURE_LIMIT", "30/minute",
                                     "Per-client limit on webhook requests that fail their signature check; "
                                     "valid deliveries are never limited."),
    "web_concurrency": Setting("WEB_CONCURRENCY", "2",
                               "Web processes gunicorn runs (`run.sh`, the README's command); live updates reach "
                               "every process's pages."),
    "web_threads": Setting("WEB_THREADS", "256",
                           "Threads per web process: open pages (one WebSocket each) plus ~32 for requests."),
    "processor": Setting("PROCESSOR", "process",
                         "`process`: the delivery processor runs as a process of its own, started and restarted "
                         "by the server (gunicorn; the development server runs it as a thread); `thread`: a "
                         "thread of the web processes (one at a time holds it); `off`: they only accept, and "
                         "`python -m dashapp worker` applies."),
    "processor_batch": Setting("PROCESSOR_BATCH", "500",
                               "Most deliveries the processor applies in one transaction when there is a backlog."),
    "inbox_path": Setting("INBOX_PATH", "",
                          "SQLite file of the delivery inbox (default: beside the store, `builds.inbox.db` for "
                          "`builds.db`); unused on PostgreSQL, where the inbox is a table of the store."),
    "trusted_proxies": Setting("TRUSTED_PROXIES", "0",
                               "Reverse proxies in front of the server that append to X-Forwarded-For/-Proto/-Host; "
                               "the client address every limit and loopback mode use is read past them (0: the "
                               "socket's address)."),
    "auth_failure_limit": Setting("AUTH_FAILURE_LIMIT", "20/minute",
                                  "Per-client limit on failed logins and wrong tokens; past it they are answered 429."),
    "request_timeout": Setting("REQUEST_TIMEOUT", "10",
                               "Seconds a client has to send a request's headers (and a small body) before its "
                               "connection is closed; no server thread waits for them meanwhile."),
    "webhook_reserve": Setting("WEBHOOK_RESERVE", "32",
                               "Threads of each web process that pages and WebSockets cannot take: /webhook always "
                               "has them."),
    "live_max_per_client": Setting("LIVE_MAX_PER_CLIENT", "20",
                                   "Open WebSockets (pages) one client address may hold per web process; each "
                                   "process holds at most WEB_THREADS - WEBHOOK_RESERVE in all."),
    "live_allowed_origins": Setting("LIVE_ALLOWED_ORIGINS", "",
                                    "Comma-separated origins (https://host[:port]) besides the server's own whose "
                                    "pages may open /ws."),
    "health_max_lag": Setting("HEALTH_MAX_LAG", "300",
                              "Seconds of processing lag past which /healthz (and /readyz) answer 503."),
    "health_min_free_mb": Setting("HEALTH_MIN_FREE_MB", "256",
                                  "Free space (MB) on the store's and inbox's disks below which /healthz answers 503."),
    "raw_retention_days": Setting("RAW_RETENTION_DAYS", "14",
                                  "Days a processed delivery's raw body is kept; its metadata (GUID, event, outcome, "
                                  "times) is kept after. 0 keeps bodies forever."),
    "archive_after_days": Setting("ARCHIVE_AFTER_DAYS", "0",
                                  "Days of runs, jobs, steps and deliveries the store keeps; older ones move into "
                                  "monthly Parquet files in ARCHIVE_DIR, in the background (the charts and cards "
                                  "of long windows keep counting them). 0 keeps everything."),
    "archive_dir": Setting("ARCHIVE_DIR", "",
                           "Where archived months go; empty: an `archive` directory beside a SQLite store "
                           "(./archive with PostgreSQL)."),
    "log_fetch": Setting("LOG_FETCH", "on",
                         "`on`: the process that runs the delivery processor fetches each failed job's log and "
                         "annotations from GitHub (needs GITHUB_TOKEN) for its failure lines; `off`: never."),
    "failure_rules": Setting("FAILURE_RULES", "",
                             "A TOML file of failure rules tried before the built-in ones (`disable = [...]` turns "
                             "built-ins off); a bad file stops the start with its error. Empty: built-ins only."),
    "log_max_bytes": Setting("LOG_MAX_BYTES", "33554432",
                             "Most bytes of one job's log read (32 MiB); past it the read stops and the job's "
                             "extraction is marked truncated."),
    "log_read_seconds": Setting("LOG_READ_SECONDS", "60",
                                "Most seconds spent reading one job's log; then it stops, marked truncated."),
    "log_fetch_tries": Setting("LOG_FETCH_TRIES", "6",
                               "Tries of a job's log on server or network errors (30 s backoff, doubled each "
                               "time, at most 1 h) before it is given up as failed."),
    "alerts_config": Setting("ALERTS_CONFIG", "",
                             "A TOML file of alert rules and channels (README \"Alerts\"); read at start, and a "
                             "bad file stops it with its error. Empty: no alerts."),
    "billing_multipliers": Setting("BILLING_MULTIPLIERS", "linux=1,windows=2,macos=10",
                                   "Runner OS multipliers of billable minutes on the Runners page, OS=NUMBER "
                                   "comma-separated (linux, windows, macos, unknown; left out: GitHub's 1, 2, 10, "
                                   "and 1 for a hosted job whose labels name no OS). Self-hosted runners are never "
                                   "billed. A bad value stops the start."),
    "oidc_issuer": Setting("OIDC_ISSUER", "",
                           "Issuer URL of an OpenID Connect provider (Google, Okta, Keycloak, Azure AD, ...). With "
                           "OIDC_CLIENT_ID, people sign in there (authorization code flow with PKCE) and every route "
                           "but /webhook and the health checks needs a session, a token or a login."),
    "oidc_client_id": Setting("OIDC_CLIENT_ID", "", "The client id this server has at the OIDC provider."),
    "oidc_client_secret": Setting("OIDC_CLIENT_SECRET", "",
                                  "The client's secret at the OIDC provider (empty: a public client, PKCE only)."),
    "oidc_scopes": Setting("OIDC_SCOPES", "openid email profile",
                           "Scopes asked of the provider (add `groups` where the provider names groups so)."),
    "github_oauth_client_id": Setting("GITHUB_OAUTH_CLIENT_ID", "",
                                      "Client id of a GitHub OAuth app: people sign in with GitHub (or GitHub "
                                      "Enterprise at GITHUB_API_URL's host) when no OIDC_ISSUER is set."),
    "github_oauth_client_secret": Setting("GITHUB_OAUTH_CLIENT_SECRET", "", "That OAuth app's client secret."),
    "role_admins": Setting("ROLE_ADMINS", "",
                           "Who is an admin (configuration, users, tokens, audit log): comma-separated logins, "
                           "e-mail addresses, `@domain` (a verified e-mail there), `group:NAME` (the ID token's "
                           "`groups`), `org:NAME` or `team:ORG/SLUG` (GitHub sign-in) or `*` (anyone the "
                           "provider signs in)."),
    "role_maintainers": Setting("ROLE_MAINTAINERS", "",
                                "Who is a maintainer (test alerts, and what an admin may do to deliveries): as "
                                "ROLE_ADMINS. API_TOKENS and DASHBOARD_USERS logins are maintainers unless "
                                "ROLE_ADMINS names them."),
    "role_viewers": Setting("ROLE_VIEWERS", "",
                            "Who may read the pages and the API after signing in: as ROLE_ADMINS. Anyone else the "
                            "provider signs in is refused."),
    "session_hours": Setting("SESSION_HOURS", "12", "Hours a sign-in lasts; then the person signs in again."),
    "session_secret": Setting("SESSION_SECRET", "",
                              "Key signing the sign-in flow's cookie (state, nonce, PKCE verifier). Empty: one is "
                              "generated and kept in the store, so every process and host shares it."),
    "ratelimit_storage_uri": Setting("RATELIMIT_STORAGE_URI", "",
                                     "Rate-limit storage of the API, login and webhook limits: store:// (the "
                                     "store's rate_limits table, shared by every process and host), memory:// "
                                     "(each process counts its own), redis://...; empty: store:// on "
                                     "PostgreSQL, memory:// on SQLite."),
}


@dataclass(frozen=True)
class Config:
    database_path: str
    webhook_secret: str
    allow_unsigned: str
    github_token: str
    github_api_url: str
    host: str
    port: int
    stale_hours: float
    sqlite_synchronous: str
    log_level: str
    api_tokens: str
    dashboard_users: str
    api_rate_limit: str
    webhook_failure_limit: str
    ratelimit_storage_uri: str
    web_concurrency: int
    web_threads: int
    processor: str
    processor_batch: int
    inbox_path: str
    trusted_proxies: int
    auth_failure_limit: str
    request_timeout: float
    webhook_reserve: int
    live_max_per_client: int
    live_allowed_origins: str
    health_max_lag: float
    health_min_free_mb: float
    raw_retention_days: float
    archive_after_days: float
    archive_dir: str
    log_fetch: str
    failure_rules: str
    log_max_bytes: int
    log_read_seconds: float
    log_fetch_tries: int
    alerts_config: str
    billing_multipliers: str
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = ""
    oidc_scopes: str = "openid email profile"
    github_oauth_client_id: str = ""
    github_oauth_client_secret: str = ""
    role_admins: str = ""
    role_maintainers: str = ""
    role_viewers: str = ""
    session_hours: float = 12.0
    session_secret: str = ""

    @property
    def signin_provider(self) -> str | None:
        """`oidc` or `github` when people sign in (OpenID Connect first when both are set), else None."""
        if self.oidc_issuer.strip() and self.oidc_client_id.strip():
            return "oidc"
        if self.github_oauth_client_id.strip():
            return "github"
        return None

    @property
    def signin(self) -> bool:
        """True when people sign in (with an OpenID Connect provider or GitHub)."""
        return self.signin_provider is not None

    @property
    def protected(self) -> bool:
        """True when data routes need a session, a token or a login."""
        return bool(self.api_tokens.strip() or self.dashboard_users.strip() or self.signin)

    @classmethod
    def from_env(cls, environ=None, **overrides) -> "Config":
        """Read every setting from `environ` (default: the process environment)."""
        environ = os.environ if environ is None else environ
        values = {name: environ.get(s.env, s.default) for name, s in SETTINGS.items()}
        values.update(overrides)
        types = {f.name: f.type for f in fields(cls)}
        for name, kind in types.items():
            if kind in ("int", int):
                values[name] = int(values[name])
            elif kind in ("float", float):
                values[name] = float(values[name])
        return cls(**values)

    def __repr__(self) -> str:  # never print secrets
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        for secret in ("webhook_secret", "github_token", "api_tokens", "dashboard_users", "oidc_client_secret",
                       "github_oauth_client_secret", "session_secret"):
            if shown[secret]:
                shown[secret] = "***"
        return f"Config({shown})"
