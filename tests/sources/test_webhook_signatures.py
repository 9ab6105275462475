"""Signature checks: Square and Shopify vectors, and CASES B10."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from tillsight.errors import AuthError, ConfigError
from tillsight.sources import verify_shopify, verify_square

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SQUARE_VECTORS: dict[str, Any] = json.loads(
    (FIXTURES / "square" / "webhook_signature_test_vectors.json").read_bytes()
)
SHOPIFY_VECTORS: dict[str, Any] = json.loads(
    (FIXTURES / "shopify" / "webhook_signature_test_vectors.json").read_bytes()
)
SQUARE_BASE = SQUARE_VECTORS["valid"][0]

B10_SECRET = "b10-shop-secret"
B10_RAW = (
    b'{"id":1,"note":"A&B \\/ 50% off","customer":{"id":"C1"},"total_price":"10.00"}'
)


def _b10_digest(body: bytes) -> bytes:
    return hmac.new(B10_SECRET.encode(), body, hashlib.sha256).digest()


B10_HEADER = base64.b64encode(_b10_digest(B10_RAW)).decode()


@pytest.mark.parametrize(
    "case", SQUARE_VECTORS["valid"], ids=lambda case: case["name"][:30]
)
def test_square_valid_vectors_pass(case: dict[str, str]) -> None:
    verify_square(
        case["request_body"].encode(),
        case["signature_header"],
        notification_url=case["notification_url"],
        signature_key=case["signature_key"],
    )


@pytest.mark.parametrize(
    "variant",
    SQUARE_VECTORS["invalid_variants_of_first_valid_case"],
    ids=lambda variant: variant["why"][:30],
)
def test_square_invalid_variants_fail(variant: dict[str, str]) -> None:
    case = {**SQUARE_BASE, **variant}

    # The old-style header is a 20-byte digest, so it fails as malformed.
    with pytest.raises(AuthError, match=r"mismatch|malformed"):
        verify_square(
            case["request_body"].encode(),
            case["signature_header"],
            notification_url=case["notification_url"],
            signature_key=case["signature_key"],
        )


@pytest.mark.parametrize(
    "variant", SQUARE_VECTORS["error_cases"], ids=lambda variant: variant["why"][:30]
)
def test_square_empty_key_or_url_is_a_configuration_error(
    variant: dict[str, str],
) -> None:
    case = {**SQUARE_BASE, **variant}

    with pytest.raises(ConfigError):
        verify_square(
            case["request_body"].encode(),
            case["signature_header"],
            notification_url=case["notification_url"],
            signature_key=case["signature_key"],
        )


@pytest.mark.parametrize("case", SHOPIFY_VECTORS["webhook_body_hmac"]["cases"])
def test_shopify_body_vector_passes(case: dict[str, str]) -> None:
    verify_shopify(
        case["raw_body"].encode(), case["x_shopify_hmac_sha256"], secret=case["secret"]
    )


@pytest.mark.parametrize("case", SHOPIFY_VECTORS["webhook_body_hmac"]["cases"])
def test_shopify_body_vector_fails_with_another_secret(case: dict[str, str]) -> None:
    with pytest.raises(AuthError, match="mismatch"):
        verify_shopify(
            case["raw_body"].encode(), case["x_shopify_hmac_sha256"], secret="other"
        )


@pytest.mark.parametrize("case", SHOPIFY_VECTORS["oauth_query_hmac"]["cases"])
def test_shopify_oauth_hex_vector_is_not_accepted_as_a_webhook_header(
    case: dict[str, Any],
) -> None:
    with pytest.raises(AuthError, match="malformed"):
        verify_shopify(b"{}", case["hmac"], secret=case["secret"])


def test_b10_h1_raw_bytes_with_their_base64_digest_pass() -> None:
    verify_shopify(B10_RAW, B10_HEADER, secret=B10_SECRET)


def test_b10_h2_reserialized_json_has_a_different_digest_and_fails() -> None:
    reserialized = json.dumps(json.loads(B10_RAW)).encode()

    assert reserialized != B10_RAW
    assert not hmac.compare_digest(_b10_digest(reserialized), _b10_digest(B10_RAW))
    with pytest.raises(AuthError, match="mismatch"):
        verify_shopify(reserialized, B10_HEADER, secret=B10_SECRET)


def test_b10_h3_tampered_total_fails() -> None:
    tampered = B10_RAW.replace(b'"10.00"', b'"100.00"')

    with pytest.raises(AuthError, match="mismatch"):
        verify_shopify(tampered, B10_HEADER, secret=B10_SECRET)


@pytest.mark.parametrize("header", [None, "", "   "])
def test_b10_h4_missing_header_fails(header: str | None) -> None:
    with pytest.raises(AuthError, match="missing header"):
        verify_shopify(B10_RAW, header, secret=B10_SECRET)


def test_b10_h5_hex_digest_is_refused_as_malformed() -> None:
    hex_header = _b10_digest(B10_RAW).hex()

    with pytest.raises(AuthError, match="malformed"):
        verify_shopify(B10_RAW, hex_header, secret=B10_SECRET)


@pytest.mark.parametrize("header", ["not base64!", "c2hvcnQ=", B10_HEADER[:-4]])
def test_header_that_is_not_a_base64_sha256_digest_is_malformed(header: str) -> None:
    with pytest.raises(AuthError, match="malformed"):
        verify_shopify(B10_RAW, header, secret=B10_SECRET)


def test_error_messages_never_quote_the_body() -> None:
    with pytest.raises(AuthError) as caught:
        verify_shopify(B10_RAW, base64.b64encode(bytes(32)).decode(), secret="s")

    assert "total_price" not in str(caught.value)
    assert "C1" not in str(caught.value)


def test_a_parsed_body_is_refused_before_hashing() -> None:
    parsed: Any = json.loads(B10_RAW)

    with pytest.raises(TypeError, match="raw bytes"):
        verify_shopify(parsed, B10_HEADER, secret=B10_SECRET)


def test_empty_shopify_secret_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError):
        verify_shopify(B10_RAW, B10_HEADER, secret="")
