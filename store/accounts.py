"""Sessions, API tokens, the audit log and shared server secrets: every query of sign-in, in one place.

Sessions and tokens are looked up by the SHA-256 of what the client holds, so a copy of the store holds no
credential.  Expired sessions are deleted as new ones are made.
"""
import hashlib
import json
import secrets
import time

from sqlalchemy import delete, select, update
from sqlalchemy.engine import Connection, Engine

from store.engine import writing
from store.schema import access_tokens, audit_log, server_secrets, web_sessions
from store.sqlfunctions import insert

TOKEN_PREFIX = "bm_"  # issued tokens start so (a secret scanner can find one pasted where it should not be)


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def shared_secret(engine: Engine, name: str) -> str:
    """The secret `name`, made once for the whole store (every process and host reads the same one)."""
    with writing(engine) as conn:
        conn.execute(insert(conn, server_secrets).values(name=name, value=secrets.token_urlsafe(48),
                                                          created=time.time())
                     .on_conflict_do_nothing(index_elements=[server_secrets.c.name]))
        return conn.execute(select(server_secrets.c.value).where(server_secrets.c.name == name)).scalar_one()


# -- sessions ----------------------------------------------------------------------------------

def open_session(conn: Connection, *, subject: str, login: str, email: str | None, role: str, hours: float,
                 now: float | None = None) -> tuple[str, str]:
    """A new session: (the cookie's value, its CSRF token).  Sessions past their end are cleared meanwhile."""
    now = time.time() if now is None else now
    value, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    conn.execute(delete(web_sessions).where(web_sessions.c.expires < now))
    conn.execute(web_sessions.insert().values(digest=digest(value), subject=subject, login=login, email=email,
                                              role=role, csrf=csrf, created=now, expires=now + hours * 3600))
    return value, csrf


def session(conn: Connection, value: str, *, now: float | None = None) -> dict | None:
    """The live session whose cookie holds `value`, or None (unknown or over)."""
    now = time.time() if now is None else now
    row = conn.execute(select(web_sessions).where(web_sessions.c.digest == digest(value),
                                                  web_sessions.c.expires > now)).mappings().first()
    return dict(row) if row else None


def close_session(conn: Connection, value: str) -> None:
    conn.execute(delete(web_sessions).where(web_sessions.c.digest == digest(value)))


# -- API tokens --------------------------------------------------------------------------------

def issue_token(conn: Connection, *, name: str, role: str, created_by: str, days: float | None,
                now: float | None = None) -> tuple[int, str]:
    """A new token: (its id, the token itself, shown once and never stored)."""
    now = time.time() if now is None else now
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(access_tokens.insert().values(
        name=name, digest=digest(token), role=role, created=now, created_by=created_by,
        expires=None if days is None else now + days * 86400).returning(access_tokens.c.id)).scalar_one()
    return int(token_id), token


def token_role(conn: Connection, token: str, *, now: float | None = None) -> tuple[int, str] | None:
    """(id, role) of the live token `token` (issued, not revoked, not expired), else None."""
    now = time.time() if now is None else now
    t = access_tokens.c
    row = conn.execute(select(t.id, t.role).where(t.digest == digest(token), t.revoked.is_(None),
                                                  (t.expires.is_(None)) | (t.expires > now))).first()
    return (int(row.id), row.role) if row else None


def tokens(conn: Connection, *, now: float | None = None) -> list[dict]:
    """Every token issued, newest first, without anything secret; each with its `state` (live, expired or
    revoked)."""
    now = time.time() if now is None else now
    t = access_tokens.c
    rows = conn.execute(select(t.id, t.name, t.role, t.created, t.created_by, t.expires, t.revoked, t.revoked_by)
                        .order_by(t.id.desc())).mappings()
    return [{**r, "state": "revoked" if r["revoked"] else "expired" if r["expires"] and r["expires"] <= now
             else "live"} for r in rows]


def revoke_token(conn: Connection, token_id: int, *, by: str, now: float | None = None) -> bool:
    """Revoke token `token_id`; False when there is no such token or it was revoked already."""
    now = time.time() if now is None else now
    return conn.execute(update(access_tokens).where(access_tokens.c.id == token_id, access_tokens.c.revoked.is_(None))
                        .values(revoked=now, revoked_by=by)).rowcount == 1


# -- the audit log -----------------------------------------------------------------------------

def audit(conn: Connection, *, actor: str, role: str, action: str, target: str | None = None,
          detail: dict | None = None, client: str | None = None, now: float | None = None) -> None:
    conn.execute(audit_log.insert().values(at=time.time() if now is None else now, actor=actor, role=role,
                                           action=action, target=target, client=client,
                                           detail=None if detail is None else json.dumps(detail, sort_keys=True)))


def audit_entries(conn: Connection, *, limit: int = 100, offset: int = 0) -> list[dict]:
    a = audit_log.c
    rows = conn.execute(select(audit_log).order_by(a.at.desc(), a.id.desc()).limit(limit).offset(offset)).mappings()
    return [{**dict(r), "detail": json.loads(r["detail"]) if r["detail"] else None} for r in rows]
