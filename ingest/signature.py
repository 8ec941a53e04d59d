"""GitHub's webhook signature: `sha256=` + HMAC-SHA256(secret, raw body)."""
import hashlib
import hmac
import re

# The header's form, checked before a body is read: anything else cannot match.
HEADER_FORM = re.compile(r"sha256=[0-9a-fA-F]{64}")


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """Constant-time check of an `X-Hub-Signature-256` header over the raw body."""
    if not secret or not header:
        return False
    return hmac.compare_digest(sign(secret, body).encode(), header.strip().encode("utf-8", "replace"))


def well_formed(header: str | None) -> bool:
    return bool(header) and HEADER_FORM.fullmatch(header.strip()) is not None


class Hasher:
    """The HMAC of a body fed to it in pieces (a body is hashed as it streams in)."""

    def __init__(self, secret: str):
        self._mac = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def matches(self, header: str) -> bool:
        expected = ("sha256=" + self._mac.hexdigest()).encode()
        return hmac.compare_digest(expected, header.strip().lower().encode("utf-8", "replace"))
