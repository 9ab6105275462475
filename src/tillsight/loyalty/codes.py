"""Reward codes: unguessable, easy to read aloud, forgiving when typed."""

from __future__ import annotations

import hashlib
import secrets

# No 0/O, 1/I/L, 5/S or 2/Z: a code read over a till counter survives it.
ALPHABET = "346789ABCDEFGHJKMNPQRTUVWXY"
LENGTH = 12  # 27**12 is about 2**57 codes


def new_code() -> str:
    """A fresh code from the operating system's secure random source."""
    return "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))


def normalise(text: str) -> str:
    """The stored form of a typed code: upper case, no spaces or dashes."""
    return "".join(ch for ch in text.upper() if ch not in " -_\t")


def display(code: str) -> str:
    """A code in groups of four, as printed on a receipt."""
    return "-".join(code[n : n + 4] for n in range(0, len(code), 4))


def is_held_out(customer_key: str, campaign: str, percent: int) -> bool:
    """Whether a customer is in a campaign's control group (always the same)."""
    if percent <= 0:
        return False
    digest = hashlib.sha256(f"{customer_key}|{campaign}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < percent
