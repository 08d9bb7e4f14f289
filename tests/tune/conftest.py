from __future__ import annotations

import os
import uuid

import pytest

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lrkit[tune]')")


@pytest.fixture()
def postgres_url() -> str:
    """The test server's URL, or a skip that says why there is none."""
    url = os.environ.get("LRKIT_TEST_POSTGRES_URL")
    if not url:
        pytest.skip(
            "LRKIT_TEST_POSTGRES_URL is not set (CI's .ci/run starts PostgreSQL and sets it)"
        )
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is not installed")
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any connection problem means "no server"
        pytest.skip(f"PostgreSQL at LRKIT_TEST_POSTGRES_URL is unreachable: {type(exc).__name__}")
    return url


@pytest.fixture()
def study_name() -> str:
    return f"lrkit-test-{uuid.uuid4().hex[:12]}"
