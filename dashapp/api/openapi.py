"""The OpenAPI 3 description of `/api`, written by hand; a test checks it covers every route and parameter."""
from alerts.config import CHANNEL_TYPES
from dashapp.api.params import (
    CURSOR_PATTERN,
    FINGERPRINT_PATTERN,
    FLAGS,
    MAX_CURSOR,
    MAX_LIMIT,
    MAX_MIN_RUNS,
    MAX_TEXT,
    MAX_TIME_TEXT,
    TIME_PATTERN,
)
from dashapp.inputs import SQLITE_MAX
from dashapp.roles import ROLES as ROLE_NAMES
from store.queries.alerts import MESSAGE_KINDS, MESSAGE_STATES
from store.queries.builds import FIELDS

_TEXT = {
    "repo": "Repository, `owner/name`.",
    "branch": "Branch name.",
    "workflow": "Workflow name.",
    "author": "GitHub login: runs they triggered or whose head commit they wrote.",
    "status": "Run status (with attempts=all: the attempt's).",
    "conclusion": "Run conclusion (with attempts=all: the attempt's).",
    "event": "Triggering event (push, pull_request, ...).",
}
_ENUMS = {
    "status": ["requested", "pending", "queued", "waiting", "in_progress", "completed"],
    "conclusion": ["success", "failure", "cancelled", "skipped", "timed_out", "neutral", "action_required",
                   "stale", "startup_failure"],
}


def _param(name: str, description: str, schema: dict, where: str = "query", required: bool = False) -> dict:
    return {"name": name, "in": where, "required": required, "description": description, "schema": schema}


_TIME = {"type": "string", "maxLength": MAX_TIME_TEXT,
         # Every accepted value matches; the server also checks the date and the range (years 1 to 9999).
         "pattern": f"^{TIME_PATTERN}$", "examples": ["2024-05-01T00:00:00Z", "1714521600"]}
# Free-text filters: an empty value means any (every other parameter must be left out instead).
FILTER_PARAMETERS = [
    *(_param(n, d, {"type": "string", **({"enum": _ENUMS[n]} if n in _ENUMS else {"maxLength": MAX_TEXT})})
      for n, d in _TEXT.items()),
    _param("since", "Runs created at or after this time: ISO 8601 (UTC when no offset) or epoch seconds "
                    "(ASCII digits, no exponent), from year 1 to 9999.", _TIME),
    _param("until", "Runs created before this time (exclusive): ISO 8601 or epoch seconds, as `since`.",
           {k: v for k, v in _TIME.items() if k != "examples"}),
    _param("window", "Runs created in the last ... (the pages' time window); not together with since.",
           {"type": "string", "enum": ["1h", "24h", "7d", "30d", "90d", "all"]}),
]
ATTEMPTS = _param("attempts", "`latest` (one row per run, its latest attempt) or `all` (one row per attempt).",
                  {"type": "string", "enum": ["latest", "all"], "default": "latest"})
PAGING = [
    _param("limit", "Rows per page.", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 100}),
    _param("cursor", "Opaque token from the previous page's `next_cursor` (made for the same `attempts`).",
           {"type": "string", "maxLength": MAX_CURSOR, "pattern": f"^{CURSOR_PATTERN}$"}),
]
LIMIT = PAGING[0]
EXCERPTS = _param("excerpts", "`1` (or `true`): each occurrence with the log lines kept around its failure line.",
                  {"type": "string", "enum": list(FLAGS), "default": "0"})
MIN_RUNS = _param("min_runs", "Runs a job needs (flaky + successful) before it can be quarantined.",
                  {"type": "integer", "minimum": 0, "maximum": MAX_MIN_RUNS, "default": 20})
THRESHOLD = _param("threshold", "Quarantine a job when the Wilson lower bound of its flake rate is above this "
                                "(ASCII decimals, no exponent).",
                   {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.05})
FINGERPRINT = _param("fingerprint", "A failure line's fingerprint: 16 lowercase hex digits.",
                     {"type": "string", "pattern": f"^{FINGERPRINT_PATTERN}$"}, "path", True)
_NAMES = [p["name"] for p in FILTER_PARAMETERS]
ROUTE_PARAMS = {
    "/api/builds": tuple(_NAMES + ["attempts", "limit", "cursor"]),
    "/api/builds.csv": tuple(_NAMES + ["attempts"]),
    "/api/metrics": tuple(_NAMES),
    "/api/runs/{run_id}": (),
    "/api/failures": tuple(_NAMES + ["limit"]),
    "/api/failures/{fingerprint}": tuple(_NAMES + ["limit", "excerpts"]),
    "/api/flaky": tuple(_NAMES + ["min_runs", "threshold", "limit"]),
    "/api/alerts": ("limit", "offset"),
    "/api/alerts/channels/{name}/test": (),
    "/api/me": (),
    "/api/tokens": (),
    "/api/tokens/{token_id}": (),
    "/api/audit": ("limit", "offset"),
    "/api/deliveries": ("limit", "offset"),
    "/api/deliveries/{guid}": (),
    "/api/deliveries/{guid}/replay": (),
    "/api/deliveries/replay": (),
    "/api/backfills": ("limit",),
    "/api/reconcile": (),
    "/api/archives": (),
    "/api/views": (),
    "/api/views/{view_id}": (),
    "/api/pins": (),
    "/api/openapi.json": (),
}

_NUM = {"type": ["number", "null"]}
_STR = {"type": ["string", "null"]}
_INT = {"type": ["integer", "null"]}
_RUN_TYPES = {"id": {"type": "integer"}, "attempt": {"type": "integer"}, "createtime": _NUM, "starttime": _NUM,
              "endtime": _NUM, "updatetime": _NUM, "runtime": _NUM, "queuetime": _NUM}
RUN_SCHEMA = {
    "type": "object",
    "description": "A run (its latest attempt, or one attempt with attempts=all); times are UTC epoch seconds, "
                   "durations seconds.",
    "properties": {name: _RUN_TYPES.get(name, _STR) for name in FIELDS},
}
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string", "description": "what is wrong"}},
                "required": ["error"], "additionalProperties": False}
ERROR = {"description": "Bad parameter (which one, and why)", "content": {"application/json": {"schema": ERROR_SCHEMA}}}
NOT_FOUND = {"description": "No such run", "content": {"application/json": {"schema": ERROR_SCHEMA}}}

# -- failure intelligence
_LIST = {"type": "array", "items": {"type": "string"}}
_CLASS = {"type": "string", "description": "test, build, lint, infra, timeout or unknown"}
_LINE = {"type": "object", "properties": {
    "ordinal": {"type": "integer", "description": "0: the job's primary line"}, "rule": {"type": "string"},
    "klass": _CLASS, "text": {"type": "string"}, "fingerprint": {"type": "string"},
    "source": {"type": "string", "description": "log or annotation"}, "path": _STR, "line": _INT,
    "fallback": {"type": "boolean", "description": "matched by a last-resort rule (exit code, catch-all)"}}}
_EVIDENCE = {"type": "object", "description": "A run (attempt) that justifies a verdict.", "properties": {
    "run": {"type": "integer"}, "run_gitid": {"type": "integer"}, "attempt": {"type": "integer"},
    "url": {**_STR, "description": "the job's page when the evidence is a job, else the run's"},
    "branch": _STR, "sha": _STR, "conclusion": _STR, "createtime": _NUM}}
VERDICT_SCHEMA = {"type": ["object", "null"], "description": "null until the job has a failure line",
                  "properties": {"kind": {"type": "string", "enum": ["NEW", "BROKEN TRUNK", "FLAKY", "INFRA", "KNOWN"]},
                                 "reason": {"type": "string"},
                                 "evidence": {"type": "array", "items": _EVIDENCE, "maxItems": 5}}}
_CAPTURE = {"type": ["string", "null"], "enum": ["pending", "done", "failed", "gone", None],
            "description": "where the capture of its log stands; null: not queued"}
OCCURRENCE_SCHEMA = {"type": "object", "description": "A failed job with this failure line.", "properties": {
    "job": {"type": "integer"}, "job_name": {"type": "string"}, "job_url": _STR, "run": {"type": "integer"},
    "run_gitid": {"type": "integer"}, "attempt": {"type": "integer"}, "run_url": _STR, "repo": {"type": "string"},
    "workflow": _STR, "branch": _STR, "sha": _STR, "title": _STR, "author": _STR, "createtime": _NUM,
    "conclusion": _STR, "text": {"type": "string"}, "rule": {"type": "string"}, "klass": _CLASS,
    "fingerprint": {"type": "string"}, "excerpt": {**_STR, "description": "the kept log lines (excerpts=1)"},
    "verdict": VERDICT_SCHEMA}}
_SUMMARY = {"jobs": {"type": "integer"}, "runs": {"type": "integer"}, "first_seen": _NUM, "last_seen": _NUM,
            **{k: _LIST for k in ("branches", "authors", "repos", "workflows", "job_names")},
            "text": {"type": "string"}, "rule": {"type": "string"}, "klass": _CLASS}
GROUP_SCHEMA = {"type": "object", "description": "The failed jobs whose primary failure line has one fingerprint.",
                "properties": {"fingerprint": {"type": "string"}, **_SUMMARY,
                               "verdict": {**VERDICT_SCHEMA, "description": "the newest occurrence's"},
                               "newest": {"type": "array", "items": OCCURRENCE_SCHEMA,
                                          "description": "newest first; only the first carries its verdict"}}}
FLAKY_SCHEMA = {"type": "object", "description": "A job (repository, workflow, job name without its matrix "
                                                 "values) that failed and passed on the same commit.",
                "properties": {
                    "repo": _STR, "workflow": _STR, "job": {"type": "string"}, "names": _LIST,
                    **{k: {"type": "integer"} for k in ("runs", "successful", "flaky", "failed")},
                    **{k: {"type": "number"} for k in ("rate", "wilson_low", "wilson_high")},
                    "quarantine": {"type": "boolean"}, "last_flaky": _NUM, "last_flaky_url": _STR,
                    "last_flaky_run": _INT}}
_JOB_FAILURE = {"failure_lines": {"type": "array", "items": _LINE, "description": "failed jobs only"},
                "fingerprint": _STR, "rule": _STR, "class": {"type": ["string", "null"]},
                "verdict": VERDICT_SCHEMA, "capture": _CAPTURE}
_STEP = {"type": "object", "properties": {"number": {"type": "integer"}, "name": {"type": "string"},
                                          "status": _STR, "conclusion": _STR, "starttime": _NUM, "endtime": _NUM}}
_JOB = {"type": "object", "properties": {
    "id": {"type": "integer"}, "attempt": {"type": "integer"}, "name": {"type": "string"}, "workflow_name": _STR,
    "head_branch": _STR, "head_sha": _STR, "status": _STR, "conclusion": _STR, "createtime": _NUM,
    "starttime": _NUM, "endtime": _NUM, "queuetime": _NUM, "runtime": _NUM, "runner_name": _STR, "runner_id": _INT,
    "labels": {"type": "array", "items": {"type": "string"}}, "url": _STR,
    "steps": {"type": "array", "items": _STEP}, **_JOB_FAILURE}}
_ATTEMPT = {"type": "object", "properties": {
    "attempt": {"type": "integer"}, "author": _STR, "status": _STR, "conclusion": _STR, "createtime": _NUM,
    "starttime": _NUM, "endtime": _NUM, "updatetime": _NUM, "runtime": _NUM, "queuetime": _NUM, "url": _STR,
    "jobs": {"type": "array", "items": _JOB}}}
_RATE = {"type": ["number", "null"], "description": "0..1; null when there are no decisive runs"}
_SECONDS = {"type": ["number", "null"], "description": "seconds; null with no data"}
METRICS_SCHEMA = {"type": "object", "description": "The metric cards of docs/metrics.md.", "properties": {
    **{k: {"type": "integer"} for k in ("runs", "decisive", "success", "failed", "cancelled", "active", "stale")},
    **{k: _RATE for k in ("success_rate", "failure_rate", "cancelled_rate")},
    **{k: _SECONDS for k in ("build_time_avg", "build_time_p50", "build_time_p90", "queue_time_p50",
                             "queue_time_p90", "tts_p50", "tts_p90")}}}

# -- alerts
OFFSET = _param("offset", "Closed breaks skipped (the history's next page).",
                {"type": "integer", "minimum": 0, "maximum": SQLITE_MAX, "default": 0})
_COMMIT = {"type": ["object", "null"], "properties": {
    "sha": {"type": "string"}, "title": {"type": "string", "description": "the message's first line"},
    "author": _STR, "time": _NUM}}
_DELIVERY = {"type": "object", "description": "One of a break's messages, to one channel.", "properties": {
    "id": {"type": "integer"}, "channel": {"type": "string"}, "kind": {"type": "string", "enum": list(MESSAGE_KINDS)},
    "state": {"type": "string", "enum": list(MESSAGE_STATES)}, "tries": {"type": "integer"}, "next_try": _NUM,
    "sent": _NUM, "last_error": _STR}}
BREAK_SCHEMA = {"type": "object", "description": "An alert episode: a watched workflow red on a branch (red), a "
                                                 "run stuck (stale), an operator threshold crossed (lag, "
                                                 "failed_deliveries).",
                "properties": {
                    "id": {"type": "integer"}, "rule": {"type": "string"}, "kind": {"type": "string"},
                    "subject": {"type": "string"}, "state": {"type": "string", "enum": ["open", "closed"]},
                    "repo": _STR, "repo_url": _STR, "workflow": _STR, "branch": _STR, "opened": {"type": "number"},
                    "closed": _NUM, "red_since": _NUM,
                    "red_for": {**_NUM, "description": "seconds red: to now while open, to its closing once closed"},
                    "red_count": _INT, "quiet": {"type": "boolean", "description": "recorded, not sent (a backfill)"},
                    **{k: _COMMIT for k in ("first_bad", "last_bad", "last_green", "fixed_by")},
                    "title": {"type": "string"}, "deliveries": {"type": "array", "items": _DELIVERY}}}
MESSAGE_SCHEMA = {"type": "object", "description": "A message of the outbox and its delivery.", "properties": {
    **_DELIVERY["properties"], "break_id": _INT, "rule": _STR, "created": {"type": "number"},
    "last_error": {**_STR, "description": "why the last try failed (never a secret)"},
    "ref": {**_STR, "description": "what the receiver answered that later messages need (a GitHub issue's number)"},
    "title": {"type": "string"}, "alert": _STR, "repo": _STR}}
_NAMED = {"type": "string"}
ALERTS_SCHEMA = {"type": "object", "properties": {
    "configured": {"type": "boolean", "description": "false when ALERTS_CONFIG is not set (no rules, no channels)"},
    "channels": {"type": "array", "items": {"type": "object", "properties": {
        "name": _NAMED, "type": {"type": "string", "enum": list(CHANNEL_TYPES)},
        "description": {"type": "string", "description": "where it goes; never a secret"}}}},
    "rules": {"type": "array", "items": {"type": "object", "properties": {
        "name": _NAMED, "repos": _LIST, "workflows": _LIST, "branches": _LIST, "consecutive": {"type": "integer"},
        "ignore_verdicts": _LIST, "channels": _LIST, "red_hours": _NUM, "stale": {"type": "boolean"}}}},
    "operator": {"type": ["object", "null"]},
    "open": {"type": "array", "items": BREAK_SCHEMA, "description": "newest opened first"},
    "history": {"type": "array", "items": BREAK_SCHEMA, "description": "closed breaks, newest closed first"},
    "messages": {"type": "array", "items": MESSAGE_SCHEMA, "description": "newest first"},
    "counts": {"type": "object", "properties": {
        "open": {"type": "integer"}, "closed": {"type": "integer"},
        "messages": {"type": "object", "properties": {s: {"type": "integer"} for s in MESSAGE_STATES}}}},
    "limit": {"type": "integer"}, "offset": {"type": "integer"}, "now": {"type": "number"}}}
CHANNEL = _param("name", "The channel's name in ALERTS_CONFIG.", {"type": "string", "minLength": 1, "maxLength": 200},
                 "path", True)
TEST_SCHEMA = {"type": "object", "properties": {
    "channel": {"type": "string"}, "id": {"type": "integer", "description": "the test message's id"},
    "state": {"type": "string", "enum": list(MESSAGE_STATES)},
    "error": {**_STR, "description": "why it was not delivered (never a secret)"},
    "detail": {**_STR, "description": "what was done or checked"}, "delivered": {"type": "boolean"}}}


TOKEN_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "role": {"type": "string", "enum": list(ROLE_NAMES)},
    "created": {"type": "number"}, "created_by": {"type": "string"}, "expires": _NUM, "revoked": _NUM,
    "revoked_by": _STR, "state": {"type": "string", "enum": ["live", "expired", "revoked"]}}}
AUDIT_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "at": {"type": "number"}, "actor": {"type": "string"}, "role": {"type": "string"},
    "action": {"type": "string"}, "target": _STR, "detail": {"type": ["object", "null"]}, "client": _STR}}


DEAD_LETTER_SCHEMA = {"type": "object", "properties": {
    "guid": {"type": "string"}, "event": {"type": "string"}, "action": _STR, "repo": _STR,
    "received": {"type": "number"}, "error": _STR, "size": {"type": "integer"}}}
JOB_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "kind": {"type": "string"}, "target": {"type": "string"},
    "state": {"type": "string", "enum": ["running", "done", "failed", "interrupted"]}, "actor": {"type": "string"},
    "started": {"type": "number"}, "updated": {"type": "number"}, "finished": _NUM,
    "progress": {"type": "object"}, "error": _STR}}
QUEUED_SCHEMA = {"type": "object", "properties": {"queued": {"type": "integer"}, "at": {"type": "number"}}}
VIEW_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "integer"}, "name": {"type": "string"}, "path": {"type": "string"}, "search": {"type": "string"},
    "slug": {"type": "string"}, "link": {"type": "string"}, "created": {"type": "number"}}}
PINS_SCHEMA = {"type": "object", "properties": {
    "repos": {"type": "array", "items": {"type": "string"}},
    "workflows": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}}
GUID = _param("guid", "The delivery's X-GitHub-Delivery.", {"type": "string", "minLength": 1, "maxLength": 100},
              "path", True)
EMPTY_JSON_BODY = {"required": False, "content": {"application/json": {
    "schema": {"type": "object", "description": "nothing is read from it: {} will do"}}}}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": ERROR_SCHEMA}}}


FORBIDDEN = {"description": "The request's role may not do this", "content": {"application/json": {
    "schema": ERROR_SCHEMA}}}


def _json(schema: dict, description: str = "OK") -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def openapi() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Build Monitor API", "version": "1.0",
                 "description": "Build history and metrics of GitHub Actions runs received by webhook."},
        "paths": {
            "/api/builds": {"get": {
                "summary": "Build history, newest first (createtime, then run id, descending), keyset-paged.",
                "parameters": FILTER_PARAMETERS + [ATTEMPTS] + PAGING,
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": RUN_SCHEMA},
                    "count": {"type": "integer"}, "total": {"type": "integer", "description": "rows the filters select"},
                    "limit": {"type": "integer"}, "attempts": {"type": "string"}, "filters": {"type": "object"},
                    "next_cursor": _STR, "next": {**_STR, "description": "URL of the next page; null on the last"},
                }}), "400": ERROR}}},
            "/api/builds.csv": {"get": {
                "summary": "Every selected build as CSV (streamed; ISO 8601 UTC times; formula cells defused).",
                "parameters": FILTER_PARAMETERS + [ATTEMPTS],
                "responses": {"200": {"description": "CSV with a header row: " + ", ".join(FIELDS),
                                      "content": {"text/csv": {"schema": {"type": "string"}}}}, "400": ERROR}}},
            "/api/metrics": {"get": {
                "summary": "The metric cards for the filters (the numbers the pages show).",
                "parameters": FILTER_PARAMETERS,
                "responses": {"200": _json(METRICS_SCHEMA), "400": ERROR}}},
            "/api/runs/{run_id}": {"get": {
                "summary": "One run with its attempts, their jobs and steps.",
                "parameters": [_param("run_id", "GitHub's workflow run id (ASCII digits).",
                                      {"type": "integer", "minimum": 1, "maximum": SQLITE_MAX}, "path", True)],
                "responses": {"200": _json({**RUN_SCHEMA, "properties": {
                    **RUN_SCHEMA["properties"], "attempts": {"type": "array", "items": _ATTEMPT},
                    "unmatched_jobs": {"type": "array", "items": _JOB,
                                       "description": "jobs of an attempt with no workflow_run event yet"}}}),
                    "400": ERROR, "404": NOT_FOUND}}},
            "/api/failures": {"get": {
                "summary": "Failed jobs of the selected runs grouped by their failure line's fingerprint, the group "
                           "with the newest occurrence first; each with its newest occurrence's verdict.",
                "description": "A failed job is a job of a failed run's latest attempt that completed failure or "
                               "timed_out, once its log gave a failure line (see /api/runs/{run_id} for the rest).",
                "parameters": FILTER_PARAMETERS + [LIMIT],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": GROUP_SCHEMA}, "count": {"type": "integer"},
                    "limit": {"type": "integer"}, "filters": {"type": "object"}}}), "400": ERROR}}},
            "/api/failures/{fingerprint}": {"get": {
                "summary": "One failure group: its totals over all time, and its occurrences among the selected "
                           "runs, newest first, each with its verdict (and with excerpts=1 its kept log lines).",
                "parameters": [FINGERPRINT] + FILTER_PARAMETERS + [LIMIT, EXCERPTS],
                "responses": {"200": _json({"type": "object", "properties": {
                    **{k: v for k, v in GROUP_SCHEMA["properties"].items() if k != "newest"},
                    "occurrences": {"type": "array", "items": OCCURRENCE_SCHEMA}, "count": {"type": "integer"},
                    "limit": {"type": "integer"}, "filters": {"type": "object"}}}),
                    "400": ERROR, "404": {**NOT_FOUND, "description": "No failed job has this fingerprint"}}}},
            "/api/flaky": {"get": {
                "summary": "Jobs that flaked (failed, then passed on a re-run or on the same commit) in the selected "
                           "runs (the last 30 days unless since or window says otherwise), the ones to quarantine first: "
                           "flake rate with its Wilson interval.",
                "parameters": FILTER_PARAMETERS + [MIN_RUNS, THRESHOLD, LIMIT],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": FLAKY_SCHEMA}, "count": {"type": "integer"},
                    "min_runs": {"type": "integer"}, "threshold": {"type": "number"}, "limit": {"type": "integer"},
                    "filters": {"type": "object"}}}), "400": ERROR}}},
            "/api/alerts": {"get": {
                "summary": "Alerts: the rules and channels (never their secrets), open breaks, closed ones (newest "
                           "closed first) and the newest messages with their delivery state, tries and last error.",
                "parameters": [LIMIT, OFFSET],
                "responses": {"200": _json(ALERTS_SCHEMA), "400": ERROR}}},
            "/api/alerts/channels/{name}/test": {"post": {
                "summary": "Send a test message to one channel now; answers how it went (it is in the outbox too).",
                "description": "Needs Content-Type: application/json. On a protected server the usual token or "
                               "login; on an unprotected one only a client on the server's own host.",
                "parameters": [CHANNEL],
                "requestBody": {"required": False, "content": {"application/json": {
                    "schema": {"type": "object", "description": "nothing is read from it: {} will do"}}}},
                "responses": {"200": _json(TEST_SCHEMA, "Tried: `state` says whether it was delivered"),
                              "400": ERROR, "403": _error("An unprotected server and a client from elsewhere"),
                              "404": _error("No channel of that name"),
                              "409": _error("Alerts are not configured (ALERTS_CONFIG)"),
                              "415": _error("Not sent as application/json")}}},
            "/api/me": {"get": {
                "summary": "Who this request is (`actor`), its role (viewer, maintainer, admin) and how it proved it.",
                "responses": {"200": _json({"type": "object", "properties": {
                    "actor": {"type": "string"}, "role": {"type": "string", "enum": list(ROLE_NAMES)},
                    "via": {"type": "string"}, "email": _STR, "signin": {"type": "boolean"},
                    "protected": {"type": "boolean"}}}), "400": ERROR}}},
            "/api/tokens": {
                "get": {"summary": "Every API token issued (never the token itself), newest first. Admins only.",
                        "responses": {"200": _json({"type": "object", "properties": {
                            "items": {"type": "array", "items": TOKEN_SCHEMA}, "count": {"type": "integer"}}}),
                            "400": ERROR, "403": FORBIDDEN}},
                "post": {"summary": "Issue an API token with a role and an optional lifetime in days; the answer is "
                                    "the only place the token is shown. Admins only.",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["name"], "additionalProperties": False,
                             "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 200},
                                            "role": {"type": "string", "enum": list(ROLE_NAMES),
                                                     "default": "viewer"},
                                            "days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3650}}}}}},
                         "responses": {"201": _json({"type": "object", "properties": {
                             "id": {"type": "integer"}, "token": {"type": "string"}, "name": {"type": "string"},
                             "role": {"type": "string"}, "created": {"type": "number"}, "expires": _NUM}},
                             "Issued: send it as `Authorization: Bearer TOKEN`"),
                             "400": ERROR, "403": FORBIDDEN,
                             "409": _error("The server checks no credentials: a token would open nothing"),
                             "415": _error("Not sent as application/json")}}},
            "/api/tokens/{token_id}": {"delete": {
                "summary": "Revoke a token: from now on it opens nothing. Admins only.",
                "parameters": [_param("token_id", "The token's id (from GET /api/tokens).",
                                      {"type": "integer", "minimum": 1}, "path", True)],
                "responses": {"200": _json({"type": "object", "properties": {
                    "id": {"type": "integer"}, "revoked": {"type": "boolean"}}}),
                    "400": ERROR, "403": FORBIDDEN, "404": _error("No live token of that id")}}},
            "/api/audit": {"get": {
                "summary": "The audit log, newest first: sign-ins, tokens issued and revoked, test messages. "
                           "Admins only.",
                "parameters": [LIMIT, _param("offset", "Entries skipped (the next page).",
                                             {"type": "integer", "minimum": 0, "default": 0})],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": AUDIT_SCHEMA}, "count": {"type": "integer"},
                    "limit": {"type": "integer"}, "offset": {"type": "integer"}}}),
                    "400": ERROR, "403": FORBIDDEN}}},
            "/api/deliveries": {"get": {
                "summary": "The dead letters: deliveries logged failed, newest first, with their errors. "
                           "Maintainers and admins.",
                "parameters": [LIMIT, _param("offset", "Dead letters skipped (the next page).",
                                             {"type": "integer", "minimum": 0, "default": 0})],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": DEAD_LETTER_SCHEMA}, "count": {"type": "integer"},
                    "total": {"type": "integer"}, "limit": {"type": "integer"}, "offset": {"type": "integer"}}}),
                    "400": ERROR, "403": FORBIDDEN}}},
            "/api/deliveries/{guid}": {"get": {
                "summary": "One delivery with its payload (pretty JSON, cut at 256 kB). Maintainers and admins.",
                "parameters": [GUID],
                "responses": {"200": _json({"type": "object", "properties": {
                    **DEAD_LETTER_SCHEMA["properties"], "outcome": {"type": "string"}, "processed": _NUM,
                    "payload": {"type": "string"}, "payload_cut": {"type": "boolean"}}}),
                    "400": ERROR, "403": FORBIDDEN, "404": _error("No delivery with that GUID")}}},
            "/api/deliveries/{guid}/replay": {"post": {
                "summary": "Replay one dead letter: it goes back to the inbox and the processor applies it. "
                           "Maintainers and admins; needs Content-Type: application/json.",
                "parameters": [GUID], "requestBody": EMPTY_JSON_BODY,
                "responses": {"202": _json(QUEUED_SCHEMA, "Queued"), "400": ERROR, "403": FORBIDDEN,
                              "404": _error("Not a dead letter (unknown, applied or queued already)"),
                              "415": _error("Not sent as application/json")}}},
            "/api/deliveries/replay": {"post": {
                "summary": "Replay every dead letter (the oldest 1,000 at a time). Maintainers and admins; needs "
                           "Content-Type: application/json.",
                "requestBody": EMPTY_JSON_BODY,
                "responses": {"202": _json(QUEUED_SCHEMA, "Queued"), "400": ERROR, "403": FORBIDDEN,
                              "415": _error("Not sent as application/json")}}},
            "/api/backfills": {
                "get": {"summary": "Backfills and reconciles started from the Admin page or this API, newest first, "
                                   "with their progress (state: running, done, failed, interrupted). Maintainers "
                                   "and admins.",
                        "parameters": [LIMIT],
                        "responses": {"200": _json({"type": "object", "properties": {
                            "items": {"type": "array", "items": JOB_SCHEMA}, "count": {"type": "integer"}}}),
                            "400": ERROR, "403": FORBIDDEN}},
                "post": {"summary": "Backfill a repository from GitHub's REST API in the background (needs "
                                    "GITHUB_TOKEN). Maintainers and admins.",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["repo"], "additionalProperties": False,
                             "properties": {"repo": {"type": "string", "pattern": "^[^/]+/[^/]+$"},
                                            "days": {"type": "number", "exclusiveMinimum": 0, "maximum": 3650}}}}}},
                         "responses": {"202": _json({"type": "object", "properties": {
                             "id": {"type": "integer"}, "repo": {"type": "string"}}}, "Started"),
                             "400": ERROR, "403": FORBIDDEN,
                             "409": _error("No GITHUB_TOKEN, or a backfill of the repository is running"),
                             "415": _error("Not sent as application/json")}}},
            "/api/reconcile": {"post": {
                "summary": "Re-fetch, in the background, the runs stored as still active for over STALE_HOURS "
                           "(needs GITHUB_TOKEN); listed with the backfills. Maintainers and admins.",
                "requestBody": {"required": False, "content": {"application/json": {"schema": {
                    "type": "object", "additionalProperties": False,
                    "properties": {"repo": {"type": "string", "pattern": "^[^/]+/[^/]+$",
                                            "description": "one repository (left out: every one)"}}}}}},
                "responses": {"202": _json({"type": "object", "properties": {
                    "id": {"type": "integer"}, "repo": _STR}}, "Started"),
                    "400": ERROR, "403": FORBIDDEN,
                    "409": _error("No GITHUB_TOKEN, or a reconcile of the repository is running"),
                    "415": _error("Not sent as application/json")}}},
            "/api/archives": {"get": {
                "summary": "What retention moved out of the store (ARCHIVE_AFTER_DAYS): the policy's days (null: "
                           "everything is kept), the time before which runs, jobs and deliveries are archived "
                           "(null: none are) and each archived month's batches, rows per table and bytes of "
                           "Parquet. Maintainers and admins.",
                "responses": {"200": _json({"type": "object", "properties": {
                    "keep_days": _NUM, "archived_before": _NUM,
                    "months": {"type": "array", "items": {"type": "object", "properties": {
                        "month": {"type": "string"}, "parts": {"type": "integer"}, "bytes": {"type": "integer"},
                        "rows": {"type": "object", "additionalProperties": {"type": "integer"}}}}}}}),
                    "400": ERROR, "403": FORBIDDEN}}},
            "/api/views": {
                "get": {"summary": "This person's saved views, by name, each with its share `link` (/v/<slug>). "
                                   "403 for an anonymous reader.",
                        "responses": {"200": _json({"type": "object", "properties": {
                            "items": {"type": "array", "items": VIEW_SCHEMA}, "count": {"type": "integer"}}}),
                            "400": ERROR, "403": FORBIDDEN}},
                "post": {"summary": "Save a page with its filters under a name (a name saved again is replaced, its "
                                    "link kept). Needs Content-Type: application/json.",
                         "requestBody": {"required": True, "content": {"application/json": {"schema": {
                             "type": "object", "required": ["name", "path"], "additionalProperties": False,
                             "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 100},
                                            "path": {"type": "string", "pattern": "^/[^/?#]"},
                                            "search": {"type": "string", "pattern": "^(\\?.*)?$"}}}}}},
                         "responses": {"201": _json(VIEW_SCHEMA, "Saved"), "400": ERROR, "403": FORBIDDEN,
                                       "415": _error("Not sent as application/json")}}},
            "/api/views/{view_id}": {"delete": {
                "summary": "Delete one of this person's saved views (its link opens nothing from then on).",
                "parameters": [_param("view_id", "The view's id (from GET /api/views).",
                                      {"type": "integer", "minimum": 1}, "path", True)],
                "responses": {"204": {"description": "Deleted"}, "400": ERROR, "403": FORBIDDEN,
                              "404": _error("This person has no view of that id")}}},
            "/api/pins": {
                "get": {"summary": "This person's pinned repositories and workflows (per repository): the "
                                   "Waterfall lists them first.",
                        "responses": {"200": _json(PINS_SCHEMA), "400": ERROR, "403": FORBIDDEN}},
                "put": {"summary": "Set one repository's pins: whether it is pinned and which of its workflows are. "
                                   "Needs Content-Type: application/json.",
                        "requestBody": {"required": True, "content": {"application/json": {"schema": {
                            "type": "object", "required": ["repo"], "additionalProperties": False,
                            "properties": {"repo": {"type": "string", "pattern": "^[^/]+/[^/]+$"},
                                           "pinned": {"type": "boolean"},
                                           "workflows": {"type": "array", "items": {"type": "string"}}}}}}},
                        "responses": {"200": _json(PINS_SCHEMA), "400": ERROR, "403": FORBIDDEN,
                                      "415": _error("Not sent as application/json")}}},
            "/api/openapi.json": {"get": {"summary": "This description.",
                                          "responses": {"200": _json({"type": "object"})}}},
        },
    }
