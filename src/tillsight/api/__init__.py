"""The HTTP API: canonical events, POS webhooks, customers and firings."""

from __future__ import annotations

from tillsight.api.app import create_app

__all__ = ["create_app"]
