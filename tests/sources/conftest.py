"""Readers for the vendor fixtures under ``tests/fixtures``."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"

Loader = Callable[[str], Any]


@pytest.fixture
def square_sample() -> Loader:
    """Return a reader of ``tests/fixtures/square/<name>.json``."""
    return lambda name: _read(FIXTURES / "square" / f"{name}.json")


@pytest.fixture
def shopify_sample() -> Loader:
    """Return a reader of ``tests/fixtures/shopify/<relative path>``.

    Shopify's documented webhook samples sit under ``response`` in gadget's
    metadata files; the reader unwraps them so tests see the webhook body.
    """

    def read(relative: str) -> Any:
        document = _read(FIXTURES / "shopify" / relative)
        if relative.startswith("gadget_webhook_docs_samples"):
            return document["response"]
        return document

    return read


def _read(path: Path) -> Any:
    return json.loads(path.read_bytes())
