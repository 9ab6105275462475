"""Webhook signature checks for Square and Shopify.

Both vendors sign the exact bytes they send with HMAC-SHA256 and put the
base64 digest in a header. The check must therefore run on the raw request
body, before any JSON parsing: a body that was parsed and serialised again
differs in spacing and escaping and will not verify (see ``CASES.md`` B10).

Failures raise ``AuthError`` whose message starts with the reason
(``missing header``, ``malformed header`` or ``mismatch``). Messages never quote
the body or the header value. A missing secret is a configuration fault, not
the sender's, and raises ``ConfigError``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from tillsight.errors import AuthError, ConfigError

__all__ = ["SHOPIFY_HEADER", "SQUARE_HEADER", "verify_shopify", "verify_square"]

SQUARE_HEADER = "x-square-hmacsha256-signature"
SHOPIFY_HEADER = "X-Shopify-Hmac-Sha256"

_DIGEST_BYTES = hashlib.sha256().digest_size


def verify_square(
    raw_body: bytes,
    header: str | None,
    *,
    notification_url: str,
    signature_key: str,
) -> None:
    """Check a Square webhook's ``x-square-hmacsha256-signature`` header.

    Square signs the notification URL of the subscription followed by the raw
    body, so ``notification_url`` must be the URL exactly as registered.
    """
    if not signature_key:
        raise ConfigError("Square webhook signature key is empty; set it in settings")
    if not notification_url:
        raise ConfigError("Square notification URL is empty; set it in settings")
    _require_bytes(raw_body)

    message = notification_url.encode("utf-8") + raw_body
    _verify(message, header, key=signature_key, header_name=SQUARE_HEADER)


def verify_shopify(raw_body: bytes, header: str | None, *, secret: str) -> None:
    """Check a Shopify webhook's ``X-Shopify-Hmac-Sha256`` header."""
    if not secret:
        raise ConfigError("Shopify webhook secret is empty; set it in settings")
    _require_bytes(raw_body)

    _verify(raw_body, header, key=secret, header_name=SHOPIFY_HEADER)


def _verify(message: bytes, header: str | None, *, key: str, header_name: str) -> None:
    if header is None or not header.strip():
        raise AuthError(f"missing header: the request has no {header_name}")
    claimed = _decode(header.strip(), header_name)

    expected = hmac.new(key.encode("utf-8"), message, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, claimed):
        raise AuthError(
            f"mismatch: {header_name} does not match the body; check the secret "
            "and that the raw request bytes were verified"
        )


def _decode(header: str, header_name: str) -> bytes:
    try:
        claimed = base64.b64decode(header, validate=True)
    except (binascii.Error, ValueError):
        claimed = b""
    if len(claimed) != _DIGEST_BYTES:
        # A hex digest (64 characters) lands here too: it decodes to 48 bytes.
        raise AuthError(
            f"malformed header: {header_name} is not the base64 of a "
            f"{_DIGEST_BYTES}-byte HMAC-SHA256 digest"
        )
    return claimed


def _require_bytes(raw_body: object) -> None:
    if not isinstance(raw_body, bytes | bytearray | memoryview):
        raise TypeError(
            "raw_body must be the request's raw bytes, read before any JSON parsing"
        )
