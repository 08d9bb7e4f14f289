from __future__ import annotations

import os
import uuid

import pytest

optuna = pytest.importorskip("optuna", reason="optuna is not installed (pip install 'lrkit[tune]')")


def _no_server(reason: str) -> None:
    """Skip, or fail where a server is required (LRKIT_TEST_POSTGRES_REQUIRED=1, e.g. in CI
    on a machine where it installed one), so that a broken set-up cannot pass as a skip."""
    if os.environ.get("LRKIT_TEST_POSTGRES_REQUIRED", "") not in ("", "0"):
        pytest.fail(f"{reason}, but LRKIT_TEST_POSTGRES_REQUIRED is set")
    pytest.skip(reason)


@pytest.fixture()
def postgres_url() -> str:
    """The test server's URL, or a skip that says why there is none."""
    url = os.environ.get("LRKIT_TEST_POSTGRES_URL")
    if not url:
        _no_server(
            "LRKIT_TEST_POSTGRES_URL is not set (CI's .ci/run starts PostgreSQL and sets it)"
        )
    try:
        import psycopg2
    except ImportError:
        _no_server("psycopg2 is not installed (pip install 'lrkit[postgres]')")
    try:
        psycopg2.connect(url, connect_timeout=3).close()
    except Exception as exc:  # noqa: BLE001 - any connection problem means "no server"
        _no_server(f"PostgreSQL at LRKIT_TEST_POSTGRES_URL is unreachable: {type(exc).__name__}")
    assert url is not None
    return url


@pytest.fixture()
def study_name() -> str:
    return f"lrkit-test-{uuid.uuid4().hex[:12]}"
