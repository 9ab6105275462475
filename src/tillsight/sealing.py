"""Encryption at rest for stored data that may hold personal details.

Quarantined request bodies are kept whole so an operator can fix and resend
them, and in a clinic they can carry names, emails and health-related lines.
They are sealed with Fernet (AES-128-CBC with HMAC-SHA256, from
``cryptography``) before they reach the database, with a key kept outside it:
``$TILLSIGHT_DATA_KEY`` (a Fernet key), else the key file at
``$TILLSIGHT_KEY_FILE`` (default ``~/.config/tillsight/data.key``), made with
mode 0600 on first use. Back the key up apart from the database: without it a
sealed body cannot be read.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from tillsight.errors import ConfigError

KEY_VARIABLE = "TILLSIGHT_DATA_KEY"
KEY_FILE_VARIABLE = "TILLSIGHT_KEY_FILE"
_PREFIX = b"tsf1:"


def seal(data: bytes) -> bytes:
    """Encrypt ``data`` with the data key, marked so ``unseal`` knows it."""
    return _PREFIX + _fernet().encrypt(data)


def unseal(data: bytes) -> bytes:
    """Decrypt what ``seal`` made; data stored before sealing comes back as is."""
    if not data.startswith(_PREFIX):
        return data
    try:
        return _fernet().decrypt(data[len(_PREFIX) :])
    except InvalidToken as exc:
        raise ConfigError(
            "a sealed body cannot be read with this data key: set "
            f"{KEY_VARIABLE} or {KEY_FILE_VARIABLE} to the key it was sealed with"
        ) from exc


def forget_key() -> None:
    """Drop the cached key (after the settings changed, e.g. in tests)."""
    _fernet.cache_clear()


@cache
def _fernet() -> Fernet:
    given = os.environ.get(KEY_VARIABLE)
    if given:
        return _checked(given.encode(), KEY_VARIABLE)
    path = Path(
        os.environ.get(KEY_FILE_VARIABLE)
        or Path.home() / ".config" / "tillsight" / "data.key"
    )
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(Fernet.generate_key())
    return _checked(path.read_bytes().strip(), str(path))


def _checked(key: bytes, where: str) -> Fernet:
    try:
        return Fernet(key)
    except ValueError as exc:
        raise ConfigError(
            f"{where} does not hold a Fernet key (32 url-safe base64 bytes)"
        ) from exc


def seal_text(text: str) -> str:
    """``seal`` for a text column: the sealed form is plain ASCII."""
    return seal(text.encode()).decode("ascii")


def unseal_text(text: str | None) -> str | None:
    """``unseal`` for a text column; None stays None."""
    return None if text is None else unseal(text.encode("ascii", "replace")).decode()
