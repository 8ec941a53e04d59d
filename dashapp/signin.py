"""Sign-in with an OpenID Connect provider or GitHub: `/signin`, `/signin/callback`, `/signout`, `/signed-out`.

Authlib does the protocol: the authorization code flow with PKCE (S256), `state` (and OpenID Connect's
`nonce`) kept in a signed cookie for the few minutes of the flow; with OpenID Connect the ID token's
signature checked against the provider's published keys, and its issuer, audience, expiry and nonce.
GitHub's OAuth apps speak no OpenID Connect: who signed in is asked of its REST API with the access token
(`/user`, its verified e-mail addresses, organisations and teams), which is then forgotten.  What stays here is ours: the role the ROLE_*
settings give the person (`dashapp.roles`), a server-side session (`store/accounts.py`; the cookie holds a
random value whose SHA-256 names the session row, so sign-out and expiry hold on every process and host),
the CSRF cookie Dash's renderer sends back as `X-CSRFToken`, and the audit log.
"""
import html
import logging
from urllib.parse import urlsplit

from authlib.integrations.flask_client import OAuth
from flask import Blueprint, Flask, current_app, make_response, redirect, request, session as flow

from dashapp.roles import Person, role_for
from domain.text import is_relative_link
from dashapp.security import CSRF_COOKIE, SESSION_COOKIE, identity, public
from store import accounts
from store.engine import writing

log = logging.getLogger(__name__)
bp = Blueprint("signin", __name__)


def init_signin(server: Flask, services) -> None:
    """Serve the sign-in routes on `server` when OIDC_ISSUER and OIDC_CLIENT_ID are set (and /signout always:
    a session outlives a change of settings)."""
    config = services.config
    server.register_blueprint(bp)
    if not config.signin:
        return
    # The flow's cookie is signed with a key every process and host shares (else a sign-in started on one
    # worker and finished on another would fail its state check).
    server.secret_key = config.session_secret or accounts.shared_secret(services.engine, "flask_session_key")
    server.config.update(SESSION_COOKIE_NAME="buildmon_signin", SESSION_COOKIE_HTTPONLY=True,
                         SESSION_COOKIE_SAMESITE="Lax")
    oauth = OAuth(server)
    if config.signin_provider == "github":
        web = github_web_url(config.github_api_url)
        oauth.register("provider", client_id=config.github_oauth_client_id,
                       client_secret=config.github_oauth_client_secret,
                       authorize_url=f"{web}/login/oauth/authorize", access_token_url=f"{web}/login/oauth/access_token",
                       api_base_url=config.github_api_url.rstrip("/") + "/",
                       client_kwargs={"scope": GITHUB_SCOPES, "code_challenge_method": "S256"})
        return
    kwargs = {"scope": config.oidc_scopes, "code_challenge_method": "S256"}
    if not config.oidc_client_secret:
        kwargs["token_endpoint_auth_method"] = "none"  # a public client: PKCE alone proves the code is ours
    oauth.register("provider", client_id=config.oidc_client_id, client_secret=config.oidc_client_secret or None,
                   server_metadata_url=config.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
                   client_kwargs=kwargs)


# Who the person is, their verified addresses, organisations and teams (for `org:` and `team:` entries).
GITHUB_SCOPES = "read:user user:email read:org"


def github_web_url(api_url: str) -> str:
    """GitHub's web address for its REST API's: github.com for api.github.com, `https://HOST` for a GitHub
    Enterprise Server's `https://HOST/api/v3`."""
    parts = urlsplit(api_url.rstrip("/"))
    if parts.netloc == "api.github.com":
        return "https://github.com"
    path = parts.path[:-len("/api/v3")] if parts.path.endswith("/api/v3") else parts.path
    return f"{parts.scheme}://{parts.netloc}{path}"


def _oidc_person(token) -> tuple[str, Person]:
    claims = token.get("userinfo") or {}
    groups = claims.get("groups") if isinstance(claims.get("groups"), list) else []
    person = Person(login=str(claims.get("preferred_username") or claims.get("email") or claims["sub"]),
                    email=claims.get("email"), email_verified=claims.get("email_verified") is True,
                    groups=frozenset(str(g) for g in groups))
    return f"oidc:{claims.get('iss')} {claims['sub']}", person


def _github_person(client) -> tuple[str, Person]:
    """Who signed in, asked of GitHub's REST API with the token just issued (a page of 100 organisations and
    teams is plenty for roles; more are not read)."""
    def get(path):
        answer = client.get(path, headers={"Accept": "application/vnd.github+json"}, timeout=10)
        answer.raise_for_status()
        return answer.json()

    user = get("user")
    emails = get("user/emails")
    verified = [e for e in emails if isinstance(e, dict) and e.get("verified")]
    primary = next((e["email"] for e in verified if e.get("primary")), verified[0]["email"] if verified else None)
    orgs = {o["login"] for o in get("user/orgs?per_page=100") if isinstance(o, dict) and o.get("login")}
    teams = {f"{t['organization']['login']}/{t['slug']}" for t in get("user/teams?per_page=100")
             if isinstance(t, dict) and t.get("slug") and isinstance(t.get("organization"), dict)}
    person = Person(login=str(user["login"]), email=primary, email_verified=primary is not None,
                    orgs=frozenset(orgs), teams=frozenset(teams))
    return f"github:{user['id']}", person


def _services():
    return current_app.extensions["buildmon"]


def _client():
    return current_app.extensions["authlib.integrations.flask_client"].provider


def _local_path(target: str | None) -> str:
    """`target` when it is a path of this site, else "/" (no open redirect through `next`)."""
    return target if is_relative_link(target) else "/"


# The sign-in pages stand alone: the app's stylesheets are behind the sign-in they lead to.
_STYLE = ("body{font-family:system-ui,sans-serif;background:#f8f9fa;color:#212529;margin:0}"
          "main{max-width:32rem;margin:12vh auto;padding:2rem;background:#fff;border:1px solid #dee2e6;"
          "border-radius:.5rem}h1{font-size:1.4rem;margin-top:0}.brand{color:#6c757d;font-size:.9rem}"
          "a{color:#0d6efd}@media(prefers-color-scheme:dark){body{background:#212529;color:#dee2e6}"
          "main{background:#2b3035;border-color:#495057}a{color:#6ea8fe}}")


def message_page(status: int, title: str, text: str, link: tuple[str, str] | None = None):
    more = f'<p><a href="{html.escape(link[0])}">{html.escape(link[1])}</a></p>' if link else ""
    body = (f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>{html.escape(title)} · Build Monitor</title><style>{_STYLE}</style>"
            f"<main><div class=brand>Build Monitor</div><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
            f"{more}</main></html>")
    return make_response(body, status, {"Content-Type": "text/html; charset=utf-8"})


@bp.get("/signin")
@public
def signin():
    if not _services().config.signin:
        return message_page(404, "No sign-in", "This server has no sign-in configured (OIDC_ISSUER and OIDC_CLIENT_ID, "
                            "or GITHUB_OAUTH_CLIENT_ID).")
    flow["next"] = _local_path(request.args.get("next"))
    try:
        return _client().authorize_redirect(request.url_root.rstrip("/") + "/signin/callback")
    except Exception as error:  # the provider's discovery document is out of reach or wrong
        log.warning("sign-in: the provider could not be asked: %s", error)
        return message_page(502, "Sign-in unavailable", "The sign-in provider could not be reached; try again later.")


@bp.get("/signin/callback")
@public
def callback():
    services = _services()
    config = services.config
    if not config.signin:
        return message_page(404, "No sign-in", "This server has no sign-in configured.")
    try:
        client = _client()
        token = client.authorize_access_token()
        subject, person = _github_person(client) if config.signin_provider == "github" else _oidc_person(token)
    except Exception as error:  # wrong state, nonce, signature, audience, an expired token, the provider said no
        log.warning("sign-in refused: %s: %s", type(error).__name__, error)
        return message_page(400, "Sign-in failed", f"The sign-in could not be completed ({type(error).__name__}).",
                            ("/signin", "Try again"))
    role = role_for(config, person)
    address = request.remote_addr
    with writing(services.engine) as conn:
        if role is None:
            accounts.audit(conn, actor=person.login, role="none", action="signin.refused", client=address,
                           detail={"email": person.email})
        else:
            value, csrf = accounts.open_session(conn, subject=subject, login=person.login, email=person.email,
                                                role=role, hours=config.session_hours)
            accounts.audit(conn, actor=person.login, role=role, action="signin", client=address)
    if role is None:
        return message_page(403, "No access", f"You signed in as {person.login}, but this server's ROLE_VIEWERS, "
                            "ROLE_MAINTAINERS and ROLE_ADMINS do not name you. Ask an admin.")
    response = redirect(_local_path(flow.pop("next", None)))
    age = int(config.session_hours * 3600)
    secure = request.is_secure
    response.set_cookie(SESSION_COOKIE, value, max_age=age, httponly=True, secure=secure, samesite="Lax")
    # Readable by the page's script (Dash's renderer sends it back as X-CSRFToken); useless elsewhere.
    response.set_cookie(CSRF_COOKIE, csrf, max_age=age, httponly=False, secure=secure, samesite="Strict")
    return response


@bp.post("/signout")
def signout():
    """End this session (the security hook has checked its CSRF token), everywhere at once."""
    services = _services()
    who = identity()
    cookie = request.cookies.get(SESSION_COOKIE)
    with writing(services.engine) as conn:
        if cookie:
            accounts.close_session(conn, cookie)
        accounts.audit(conn, actor=who.actor, role=who.role, action="signout", client=request.remote_addr)
    response = redirect("/signed-out")
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie(CSRF_COOKIE)
    return response


@bp.get("/signed-out")
@public
def signed_out():
    return message_page(200, "Signed out", "You are signed out of Build Monitor.", ("/signin", "Sign in again"))
