"""Stores on SQLite and on PostgreSQL: the ``store_location`` fixture runs a test on both.

The PostgreSQL case needs a scratch database named by ``PBRL_TEST_POSTGRES_URL``
(``postgresql+psycopg://user@host/db``, or ``postgresql+psycopg://postgres@/db?host=/socket/dir``).
CI starts a throw-away cluster for the run (``bash .ci/with-postgres make test``, which
``.ci/run`` does); locally the PostgreSQL cases skip with that hint when the variable is
unset — except under ``CI=true``, where a missing database fails the test instead of
hiding it. Each test gets a schema of its own (dropped afterwards), so tests never see
each other's tables and the database needs no CREATE DATABASE right.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

URL_VARIABLE = "PBRL_TEST_POSTGRES_URL"
HINT = (
    f"PostgreSQL tests need {URL_VARIABLE}=postgresql+psycopg://user@host/scratch_db "
    "(or run them in a throw-away cluster: bash .ci/with-postgres .venv/bin/python -m pytest tests/test_store.py)"
)


def postgres_url() -> str:
    """The scratch database's URL; skips the test where none is set (fails under ``CI=true``)."""
    url = os.environ.get(URL_VARIABLE, "").strip()
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the PostgreSQL tests, but {URL_VARIABLE} is unset: .ci/run starts a cluster "
                        "with .ci/with-postgres")
        pytest.skip(HINT)
    if not url.startswith("postgresql"):
        pytest.fail(f"{URL_VARIABLE}={url!r} must be a postgresql+psycopg:// URL")
    return url


def _schema_url(url: str, schema: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a test's preference store lives: a SQLite file, then a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "prefs.sqlite")
        return
    url = postgres_url()
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install -e '.[dev]' (psycopg[binary])")
    from sqlalchemy import create_engine

    schema = f"pbrl_test_{uuid.uuid4().hex[:16]}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        yield _schema_url(url, schema)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql("SET lock_timeout = '20s'")
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()
