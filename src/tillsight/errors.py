"""Every error tillsight raises on purpose.

One tree, one root. Library errors (SQLAlchemy, httpx, YAML, Pydantic) are
translated into these at the edge that met them, so callers only ever catch
tillsight errors::

    TillsightError
    ├── ConfigError            bad settings, mapping or programme file
    │   └── ProgrammeError     the programme file is wrong (line and reason)
    ├── InputError             an event or row that cannot be understood
    │   ├── RowError           one row of an import file (line number)
    │   └── QuarantinedError   a request kept in the quarantine to fix
    │       ├── BodyTooLargeError   over the request size cap
    │       └── FetchFailedError    a vendor API needed to read it failed
    ├── NotFoundError          a customer, event or reward that is not there
    ├── ConflictError          a duplicate or a lost race (used reward, ...)
    ├── AuthError              a bad signature or API key
    │   └── ScopeError         a valid key without the scope a route needs
    ├── StoreError             the database refused or is out of date
    └── RemoteError            a vendor API (Salesforce, Square, SMS) failed
        └── RateLimitedError   the vendor asked us to slow down or stop

Each class also subclasses the builtin that fits it, so generic code that
catches ``ValueError`` or ``LookupError`` keeps working.
"""

from __future__ import annotations

import re

#: A quoted value this long in an error is shown by its start and its length:
#: the rejects file or quarantine entry keeps the whole value beside it.
_LONGEST_QUOTED = 60
_QUOTED = re.compile("'([^'\\n]{" + str(_LONGEST_QUOTED + 1) + ",})'")
_LONGEST_FIELD = 120
#: Characters that would act on a terminal or a log rather than show: C0 and
#: C1 controls, DEL, line and paragraph separators, direction overrides.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


class TillsightError(Exception):
    """Root of every error tillsight raises on purpose."""

    exit_code = 1


class ConfigError(TillsightError, ValueError):
    """A settings, mapping or programme file is wrong."""

    exit_code = 2


class ProgrammeError(ConfigError):
    """The programme file is wrong; the message names the line and the reason."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        self.line = line
        prefix = f"line {line}: " if line is not None else ""
        super().__init__(prefix + message)


class InputError(TillsightError, ValueError):
    """An event or row that cannot be understood.

    ``errors`` holds one ``(field, reason)`` pair per problem so that an API can
    answer with per-field errors and an importer can write them to a rejects file.
    """

    exit_code = 3

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = [(brief_field(f), brief_reason(r)) for f, r in errors]
        super().__init__(
            "; ".join(f"{field}: {reason}" for field, reason in self.errors)
        )


class RowError(InputError):
    """One row of an import file that cannot be understood."""

    def __init__(self, line: int, errors: list[tuple[str, str]]) -> None:
        self.line = line
        super().__init__(errors)

    def __str__(self) -> str:
        return f"line {self.line}: {super().__str__()}"


class QuarantinedError(InputError):
    """An input that could not become an event; it is kept in the quarantine.

    ``reason`` is a short code (``bad_json``, ``invalid_event``,
    ``unsupported_currency``, ``too_large``, ``invalid_webhook``,
    ``remote_failure``); ``quarantine_id`` says where to find the entry.
    """

    def __init__(
        self, reason: str, errors: list[tuple[str, str]], quarantine_id: int | None
    ) -> None:
        self.reason = reason
        self.quarantine_id = quarantine_id
        super().__init__(errors)


class BodyTooLargeError(QuarantinedError):
    """The request body is over the size cap."""


class FetchFailedError(QuarantinedError):
    """A vendor API needed to read the delivery failed; the sender should retry."""


class NotFoundError(TillsightError, LookupError):
    """A customer, event or reward that is not there."""

    exit_code = 4


class ConflictError(TillsightError, ValueError):
    """A duplicate, or a race that another request won."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(f"{code}: {message}")


class AuthError(TillsightError, PermissionError):
    """A bad or missing signature, API key or scope."""


class ScopeError(AuthError):
    """A valid API key that lacks the scope a route needs."""


class StoreError(TillsightError, RuntimeError):
    """The database refused an operation or its schema is out of date."""


class RemoteError(TillsightError, ConnectionError):
    """A vendor API failed in a way we could not recover from here."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class RateLimitedError(RemoteError):
    """The vendor asked us to slow down, or to stop until a reset time.

    ``retry_after_s`` is the wait the vendor named, when it named one.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, status=status)


def brief_reason(reason: str) -> str:
    """The reason with each long quoted value cut to its start and its length,
    and each control character written as its escape (``\\x1b``)."""
    if len(reason) > _LONGEST_QUOTED:
        reason = _QUOTED.sub(_cut, reason)
    return _CONTROL.sub(_escape, reason)


def brief_field(name: str) -> str:
    """A field name or an id, which a sender chooses, kept short."""
    # Cut names are shorter than the limit, so cutting twice changes nothing.
    if len(name) > _LONGEST_FIELD:
        name = f"{name[: _LONGEST_FIELD - 40]}... ({len(name):,} characters)"
    return _CONTROL.sub(_escape, name)


def _cut(found: re.Match[str]) -> str:
    value = found.group(1)
    return f"'{value[: _LONGEST_QUOTED - 20]}...' ({len(value):,} characters)"


def _escape(found: re.Match[str]) -> str:
    return found.group().encode("unicode_escape").decode("ascii")
