"""A fake OpenID Connect provider on 127.0.0.1: discovery, authorization (code flow, PKCE S256 required),
token endpoint (client_secret_basic or client_secret_post), JWKS and RS256-signed ID tokens.

Whoever asks `/authorize` is signed in as `provider.user` at once (no login form); a test sets the user, and
can make the provider misbehave (`provider.tamper`: "signature", "nonce", "audience", "expired") to see that
the app refuses what it sends.
"""
import base64
import hashlib
import json
import secrets
import time
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Request, Response

from tests.helpers import ThreadedServer


class FakeOIDC(ThreadedServer):
    def __init__(self, client_id: str = "buildmon", client_secret: str = "provider-secret"):
        self.client_id, self.client_secret = client_id, client_secret
        self.key = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                                     parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})  # same kid, wrong key
        self.user = {"sub": "u-1", "preferred_username": "ann", "email": "ann@example.com", "email_verified": True}
        self.tamper: str | None = None
        self.codes: dict[str, dict] = {}
        self.requests: list[tuple[str, dict]] = []  # (path, arguments) of each request, for the tests to read
        super().__init__(self._app)

    def _app(self, environ, start_response):
        request = Request(environ)
        self.requests.append((request.path, {**request.args, **request.form}))
        handler = {"/.well-known/openid-configuration": self._discovery, "/authorize": self._authorize,
                   "/token": self._token, "/jwks": self._jwks}.get(request.path)
        response = handler(request) if handler else Response("not found", 404)
        return response(environ, start_response)

    def _json(self, body, status=200):
        return Response(json.dumps(body), status, content_type="application/json")

    def _discovery(self, _request):
        return self._json({
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"], "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        })

    def _authorize(self, request):
        args = request.args
        if args.get("client_id") != self.client_id or args.get("response_type") != "code":
            return Response("unknown client or response type", 400)
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            return Response("PKCE (S256) is required", 400)
        if "openid" not in (args.get("scope") or "").split():
            return Response("scope must hold openid", 400)
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"challenge": args["code_challenge"], "redirect_uri": args.get("redirect_uri"),
                            "nonce": args.get("nonce"), "user": dict(self.user)}
        query = urlencode({"code": code, "state": args.get("state", "")})
        return Response(status=302, headers={"Location": f"{args.get('redirect_uri')}?{query}"})

    def _client_ok(self, request) -> bool:
        auth = request.authorization
        if auth is not None:
            return auth.username == self.client_id and auth.password == self.client_secret
        return request.form.get("client_id") == self.client_id and \
            request.form.get("client_secret") == self.client_secret

    def _token(self, request):
        form = request.form
        grant = self.codes.pop(form.get("code", ""), None)  # a code is good once
        if not self._client_ok(request):
            return self._json({"error": "invalid_client"}, 401)
        if form.get("grant_type") != "authorization_code" or grant is None \
                or form.get("redirect_uri") != grant["redirect_uri"]:
            return self._json({"error": "invalid_grant"}, 400)
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if challenge != grant["challenge"]:
            return self._json({"error": "invalid_grant", "error_description": "PKCE verifier"}, 400)
        now = int(time.time())
        claims = {"iss": self.url, "aud": self.client_id, "iat": now, "exp": now + 300,
                  "nonce": grant["nonce"], **grant["user"]}
        if self.tamper == "nonce":
            claims["nonce"] = "not-the-one-sent"
        elif self.tamper == "audience":
            claims["aud"] = "someone-else"
        elif self.tamper == "expired":
            claims.update(iat=now - 7200, exp=now - 3600)
        key = self.other_key if self.tamper == "signature" else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return self._json({"access_token": secrets.token_urlsafe(16), "token_type": "Bearer", "expires_in": 300,
                           "id_token": id_token})

    def _jwks(self, _request):
        return self._json({"keys": [self.key.as_dict(private=False)]})
