"""Settings of the live service, read from the environment once at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tillsight.errors import ConfigError

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """What ``tillsight serve`` needs besides the store and the programme.

    ``square_notification_url`` is the URL exactly as registered with Square;
    when it is unset, the URL the request was sent to is used (fine on
    loopback, wrong behind a proxy that rewrites the host). Orders are fetched
    from ``square_base_url`` only when ``square_access_token`` is set.
    """

    region: str = "GB"
    max_body_bytes: int = MIB
    quarantine_max_bytes: int = 16 * MIB
    square_signature_key: str | None = None
    square_notification_url: str | None = None
    square_base_url: str = "https://connect.squareup.com"
    square_access_token: str | None = None
    shopify_secret: str | None = None
    timer_interval_s: float = 1.0
    run_timers: bool = True
    raw_endpoint: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read ``TILLSIGHT_*`` variables; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        defaults = cls()
        return cls(
            region=env.get("TILLSIGHT_REGION", defaults.region),
            max_body_bytes=_int(
                env, "TILLSIGHT_MAX_BODY_BYTES", defaults.max_body_bytes
            ),
            quarantine_max_bytes=_int(
                env, "TILLSIGHT_QUARANTINE_MAX_BYTES", defaults.quarantine_max_bytes
            ),
            square_signature_key=env.get("TILLSIGHT_SQUARE_SIGNATURE_KEY"),
            square_notification_url=env.get("TILLSIGHT_SQUARE_NOTIFICATION_URL"),
            square_base_url=env.get(
                "TILLSIGHT_SQUARE_BASE_URL", defaults.square_base_url
            ),
            square_access_token=env.get("TILLSIGHT_SQUARE_ACCESS_TOKEN"),
            shopify_secret=env.get("TILLSIGHT_SHOPIFY_SECRET"),
            timer_interval_s=float(
                env.get("TILLSIGHT_TIMER_INTERVAL_S", defaults.timer_interval_s)
            ),
            run_timers=env.get("TILLSIGHT_RUN_TIMERS", "1") != "0",
            raw_endpoint=env.get("TILLSIGHT_RAW_ENDPOINT", "0") == "1",
        )


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    value = env.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a whole number of bytes") from None
