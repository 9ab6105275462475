"""Normalising what a till says about who the customer is.

Each hint becomes a ``(kind, value)`` pair that the store looks up. Emails and
phone numbers are personal data: they are matched through a keyed hash, so the
identities table never holds them in the clear.
"""

from __future__ import annotations

import hashlib
import hmac

import phonenumbers

from tillsight.core.events import Identity

#: The order in which hints decide who a customer is, strongest first.
KINDS = ("loyalty", "customer", "email", "phone")


def normalise_email(raw: str) -> str | None:
    """Lower-case and trim an email; None when it is not an address at all."""
    email = raw.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or " " in email:
        return None
    return email


def normalise_phone(raw: str, region: str | None = "GB") -> str | None:
    """A phone number in E.164, read in ``region`` when it has no country code."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def hints(
    identity: Identity, secret: bytes, region: str | None = "GB"
) -> list[tuple[str, str]]:
    """The lookup pairs for an identity, strongest first."""
    pairs: list[tuple[str, str]] = []
    if identity.loyalty_id:
        pairs.append(("loyalty", identity.loyalty_id.strip()))
    if identity.customer_id:
        pairs.append(("customer", identity.customer_id.strip()))
    email = normalise_email(identity.email) if identity.email else None
    if email:
        pairs.append(("email", _blind(secret, "email", email)))
    phone = normalise_phone(identity.phone, region) if identity.phone else None
    if phone:
        pairs.append(("phone", _blind(secret, "phone", phone)))
    return pairs


def identity_problems(
    identity: Identity, region: str | None = "GB", *, prefix: str = ""
) -> list[tuple[str, str]]:
    """Refuse contact details that are all a sale has to name its customer by.

    A sale that names someone only by an email or a phone that cannot be
    read would count for no one, as a guest sale, and its repeat would be a
    duplicate: the customer's purchase would be lost for good. With a
    customer or loyalty id, or another contact that reads, the sale counts
    and the unreadable one is only not remembered. The reasons never show
    the value (it is personal data).
    """
    if (identity.customer_id or "").strip() or (identity.loyalty_id or "").strip():
        return []
    email, phone = (identity.email or "").strip(), (identity.phone or "").strip()
    email_bad = bool(email) and normalise_email(email) is None
    phone_bad = bool(phone) and normalise_phone(phone, region) is None
    usable = (email and not email_bad) or (phone and not phone_bad)
    if usable or not (email_bad or phone_bad):
        return []
    nobody = "and nothing else names the customer (the sale would count for no one)"
    problems = []
    if email_bad:
        problems.append(
            (f"{prefix}customer.email", f"is not an email address, {nobody}")
        )
    if phone_bad:
        where = f" (read in {region} when it has no country code)" if region else ""
        problems.append(
            (f"{prefix}customer.phone", f"is not a phone number{where}, {nobody}")
        )
    return problems


def _blind(secret: bytes, kind: str, value: str) -> str:
    digest = hmac.new(secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
    return f"h:{digest}"
