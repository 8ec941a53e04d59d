"""A fake GitHub for sign-in on 127.0.0.1: an OAuth app's web flow (`/login/oauth/authorize`,
`/login/oauth/access_token`, PKCE accepted as GitHub does) and the REST calls that say who signed in
(`/api/v3/user`, `/user/emails`, `/user/orgs`, `/user/teams`), answering with GitHub's documented shapes.

As a GitHub Enterprise Server: the app's GITHUB_API_URL is `<url>/api/v3`, its web pages `<url>`.
Whoever is sent to authorize is signed in as `fake.user` at once.
"""
import base64
import hashlib
import json
import secrets
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from tests.helpers import ThreadedServer


class FakeGitHubOAuth(ThreadedServer):
    def __init__(self, client_id: str = "Iv1.buildmon", client_secret: str = "gh-secret"):
        self.client_id, self.client_secret = client_id, client_secret
        self.user = {"login": "octocat", "id": 583231, "name": "The Octocat", "email": None,
                     "emails": [{"email": "octocat@github.com", "primary": True, "verified": True,
                                 "visibility": "private"}],
                     "orgs": ["github"], "teams": [("github", "justice-league")]}
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.requests: list[tuple[str, dict, str | None]] = []  # (path, arguments, Authorization)
        super().__init__(self._app)
        self.api_url = self.url + "/api/v3"

    def _app(self, environ, start_response):
        request = Request(environ)
        self.requests.append((request.path, {**request.args, **request.form}, request.headers.get("Authorization")))
        routes = {"/login/oauth/authorize": self._authorize, "/login/oauth/access_token": self._token,
                  "/api/v3/user": self._me, "/api/v3/user/emails": self._emails, "/api/v3/user/orgs": self._orgs,
                  "/api/v3/user/teams": self._teams}
        handler = routes.get(request.path)
        response = handler(request) if handler else self._json({"message": "Not Found"}, 404)
        return response(environ, start_response)

    @staticmethod
    def _json(body, status=200):
        return Response(json.dumps(body), status, content_type="application/json; charset=utf-8")

    def _authorize(self, request):
        args = request.args
        if args.get("client_id") != self.client_id:
            return Response("unknown client", 404)
        code = secrets.token_hex(10)
        self.codes[code] = {"challenge": args.get("code_challenge"), "user": dict(self.user),
                            "redirect_uri": args.get("redirect_uri")}
        return Response(status=302, headers={
            "Location": f"{args['redirect_uri']}?{urlencode({'code': code, 'state': args.get('state', '')})}"})

    def _token(self, request):
        form = request.form
        auth = request.authorization
        client_id, secret = (auth.username, auth.password) if auth else (form.get("client_id"), form.get("client_secret"))
        grant = self.codes.pop(form.get("code", ""), None)
        # GitHub answers 200 with an error object for a bad code or client.
        if (client_id, secret) != (self.client_id, self.client_secret):
            return self._json({"error": "incorrect_client_credentials"})
        if grant is None:
            return self._json({"error": "bad_verification_code"})
        if grant["challenge"]:
            digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
            if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                return self._json({"error": "bad_verification_code", "error_description": "PKCE"})
        token = "gho_" + secrets.token_hex(18)
        self.tokens[token] = grant["user"]
        return self._json({"access_token": token, "token_type": "bearer", "scope": "read:org,read:user,user:email"})

    def _who(self, request):
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        return self.tokens.get(token) if scheme.lower() in ("bearer", "token") else None

    def _me(self, request):
        user = self._who(request)
        if user is None:
            return self._json({"message": "Requires authentication"}, 401)
        return self._json({"login": user["login"], "id": user["id"], "type": "User", "name": user["name"],
                           "email": user["email"], "site_admin": False})

    def _emails(self, request):
        user = self._who(request)
        return self._json(user["emails"]) if user else self._json({"message": "Requires authentication"}, 401)

    def _orgs(self, request):
        user = self._who(request)
        if user is None:
            return self._json({"message": "Requires authentication"}, 401)
        return self._json([{"login": o, "id": i + 1, "url": f"{self.api_url}/orgs/{o}"}
                           for i, o in enumerate(user["orgs"])])

    def _teams(self, request):
        user = self._who(request)
        if user is None:
            return self._json({"message": "Requires authentication"}, 401)
        return self._json([{"id": i + 1, "name": slug.title(), "slug": slug,
                            "organization": {"login": org, "id": 1}}
                           for i, (org, slug) in enumerate(user["teams"])])
