"""Who am I, the API tokens admins issue and revoke, and the audit log: `/api/me`, `/api/tokens`, `/api/audit`.

A token is shown once, when it is issued; the store keeps its SHA-256.  Issuing and revoking are written to
the audit log with who did it.  On an unprotected server there is nothing for a token to open: issuing one
is refused (409) rather than handing out a credential nothing checks.
"""
import math
import time

from flask import jsonify, request

from dashapp.api import _services, bp
from dashapp.api.openapi import ROUTE_PARAMS
from dashapp.api.params import ApiError, check_known, int_from, json_object, limit_from, path_id
from dashapp.inputs import SQLITE_MAX
from dashapp.roles import ADMIN, ROLES
from dashapp.security import audit, identity, requires
from store import accounts
from store.engine import writing

MAX_NAME = 200
MAX_DAYS = 3650


@bp.get("/me")
def me():
    """Who this request is, and what they may do."""
    check_known(request.args, ROUTE_PARAMS["/api/me"])
    who = identity()
    return jsonify(actor=who.actor, role=who.role, via=who.via, email=who.email,
                   signin=_services().config.signin, protected=_services().config.protected)


@bp.get("/tokens")
@requires(ADMIN)
def list_tokens():
    check_known(request.args, ROUTE_PARAMS["/api/tokens"])
    with _services().engine.connect() as conn:
        found = accounts.tokens(conn)
    return jsonify(items=found, count=len(found))


class Refused(ValueError):
    """A token that cannot be issued, with the answer's status."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def check_token(name, role, days) -> tuple[str, str, float | None]:
    """(name, role, days) of a token to issue, or Refused saying what is wrong."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME or not name.isprintable():
        raise Refused(f"name: what the token is for, 1 to {MAX_NAME} characters")
    if role not in ROLES:
        raise Refused(f"role: one of {', '.join(ROLES)}")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float)) or not math.isfinite(days)
                             or not 0 < days <= MAX_DAYS):
        raise Refused(f"days: how long the token lives, more than 0 and at most {MAX_DAYS} (leave out: until revoked)")
    return name.strip(), role, None if days is None else float(days)


def issue(services, name, role, days) -> dict:
    """Issue a token as this request's identity and write it to the audit log: the API's route and the Admin
    page's form both.  The answer holds the token: the only place it is ever shown."""
    name, role, days = check_token(name, role, days)
    if not services.config.protected:
        raise Refused("this server checks no credentials (no sign-in, API_TOKENS or DASHBOARD_USERS): "
                      "a token would open nothing", 409)
    now = time.time()
    with writing(services.engine) as conn:
        token_id, token = accounts.issue_token(conn, name=name, role=role, created_by=identity().actor, days=days,
                                               now=now)
        audit(conn, "token.issue", f"token:{token_id}", {"name": name, "role": role, "days": days})
    return {"id": token_id, "token": token, "name": name, "role": role, "created": now,
            "expires": None if days is None else now + days * 86400}


def revoke(services, token_id: int) -> bool:
    """Revoke a live token as this request's identity (audited); False when there is none of that id."""
    with writing(services.engine) as conn:
        done = accounts.revoke_token(conn, token_id, by=identity().actor)
        if done:
            audit(conn, "token.revoke", f"token:{token_id}")
    return done


@bp.post("/tokens")
@requires(ADMIN)
def issue_token():
    """Issue a token with a role and an optional lifetime; the answer is the only place the token is shown."""
    check_known(request.args, ROUTE_PARAMS["/api/tokens"])
    body = json_object(shape='{"name": ..., "role": ..., "days": ...}')
    unknown = sorted(set(body) - {"name", "role", "days"})
    if unknown:
        raise ApiError(f"unknown field(s): {', '.join(unknown)}; allowed: name, role, days")
    try:
        issued = issue(_services(), body.get("name"), body.get("role", "viewer"), body.get("days"))
    except Refused as exc:
        raise ApiError(str(exc), exc.status) from None
    return jsonify(issued), 201


@bp.delete("/tokens/<token_id>")
@requires(ADMIN)
def revoke_token(token_id: str):
    check_known(request.args, ())
    number = path_id(token_id, "token_id", "a token")
    if not revoke(_services(), number):
        raise ApiError(f"no live token {number} (unknown, or revoked already)", 404)
    return jsonify(id=number, revoked=True)


@bp.get("/audit")
@requires(ADMIN)
def audit_log():
    """What was done by whom, newest first: sign-ins, tokens issued and revoked, test messages sent."""
    check_known(request.args, ROUTE_PARAMS["/api/audit"])
    limit = limit_from(request.args)
    offset = int_from(request.args, "offset", lo=0, hi=SQLITE_MAX, default=0)
    with _services().engine.connect() as conn:
        found = accounts.audit_entries(conn, limit=limit, offset=offset)
    return jsonify(items=found, count=len(found), limit=limit, offset=offset)
