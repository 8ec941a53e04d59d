"""Roles: who may read, who may act, who may configure; decided from the ROLE_* settings.  Pure functions.

viewer < maintainer < admin: each may do what the one before may.  An entry of ROLE_ADMINS,
ROLE_MAINTAINERS or ROLE_VIEWERS is a login, an e-mail address, `@domain` (any verified address
there), `group:NAME` (an OpenID Connect ID token's `groups` claim), `org:NAME` or `team:ORG/SLUG`
(GitHub sign-in: the person's organisations and teams), or `*` (anyone the provider signs in).  Names
compare without case; an e-mail counts only when the provider says it is verified.
"""
from dataclasses import dataclass, field

VIEWER, MAINTAINER, ADMIN = "viewer", "maintainer", "admin"
ROLES = (VIEWER, MAINTAINER, ADMIN)
_RANK = {role: rank for rank, role in enumerate(ROLES)}


def allows(role: str | None, needed: str) -> bool:
    """Does `role` include what `needed` may do?"""
    return role in _RANK and _RANK[role] >= _RANK[needed]


@dataclass(frozen=True)
class Person:
    login: str
    email: str | None = None
    email_verified: bool = False
    groups: frozenset = field(default_factory=frozenset)
    orgs: frozenset = field(default_factory=frozenset)  # GitHub organisations' logins
    teams: frozenset = field(default_factory=frozenset)  # GitHub teams as "org/slug"


def entries(setting: str) -> tuple[str, ...]:
    return tuple(e.strip().lower() for e in setting.split(",") if e.strip())


def matches(setting: str, person: Person) -> bool:
    login = person.login.lower()
    email = (person.email or "").lower() if person.email_verified else ""
    member = {f"group:{g}".lower() for g in person.groups} | {f"org:{o}".lower() for o in person.orgs} \
        | {f"team:{t}".lower() for t in person.teams}
    for entry in entries(setting):
        if entry == "*" or entry == login or entry in member:
            return True
        if email and (entry == email or (entry.startswith("@") and email.endswith(entry))):
            return True
    return False


def role_for(config, person: Person, *, default: str | None = None) -> str | None:
    """The highest role the settings give `person`, else `default` (None: no access)."""
    for role, setting in ((ADMIN, config.role_admins), (MAINTAINER, config.role_maintainers),
                          (VIEWER, config.role_viewers)):
        if matches(setting, person):
            return role
    return default
