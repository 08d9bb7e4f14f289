"""Passwords are masked in every storage form: URLs, URL queries, libpq key=value strings."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lrkit._mask import mask, passwords, scrub
from lrkit.tuning._storage import resolve_storage

# a password always holds this marker, so that "is it still visible?" has no false positive
MARK = "Zq9Marker"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("host=db user=u password=s3cret dbname=hpo", "host=db user=u password=*** dbname=hpo"),
        ("host=db password = s3cret dbname=hpo", "host=db password = *** dbname=hpo"),
        ("host=db password='a b\\'c' dbname=hpo", "host=db password=*** dbname=hpo"),
        ("host=db PASSWORD=s3cret", "host=db PASSWORD=***"),
        ("host=db sslpassword=k3y password=p", "host=db sslpassword=*** password=***"),
        ("storage='host=db password=abc'", "storage='host=db password=***'"),
        ("password='never closed", "password=***"),
        (
            "postgresql://db/x?sslmode=require&password=pw&a=b",
            "postgresql://db/x?sslmode=require&password=***&a=b",
        ),
        ("PGPASSWORD=hunter2 lrkit tune", "PGPASSWORD=*** lrkit tune"),
        ("mysql+pymysql://root:r00t@localhost/optuna", "mysql+pymysql://root:***@localhost/optuna"),
        ("host=db user=u dbname=hpo", "host=db user=u dbname=hpo"),
    ],
)
def test_every_storage_form_is_masked(text: str, masked: str) -> None:
    assert mask(text) == masked


_PASSWORD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zs", "Zl", "Zp")), max_size=12
).map(lambda s: s + MARK)


def _libpq_quote(password: str) -> str:
    return "'" + password.replace("\\", "\\\\").replace("'", "\\'") + "'"


@settings(max_examples=200, deadline=None)
@given(password=_PASSWORD, spaces=st.sampled_from(["", " ", "  "]), quoted=st.booleans())
def test_no_libpq_password_survives_mask_or_scrub(password: str, spaces: str, quoted: bool) -> None:
    assume(quoted or not password.startswith("'"))  # libpq reads that as a quoted value
    value = _libpq_quote(password) if quoted else password.replace("\\", "\\\\")
    storage = f"host=db user=u password{spaces}={spaces}{value} dbname=hpo"
    for text in (storage, f"cannot open storage '{storage}': boom", f"({storage})"):
        assert MARK not in mask(text)
    assert MARK not in repr(mask(storage))
    # a driver that echoes the password alone: scrub knows it from the storage string
    assert MARK not in scrub(f"authentication failed for '{password}'", storage)
    assert password in passwords(storage)


@settings(max_examples=200, deadline=None)
@given(password=_PASSWORD)
def test_no_url_password_survives_mask_or_scrub(password: str) -> None:
    url = f"postgresql://me:{quote(password, safe='')}@db:5432/hpo"
    assert mask(url) == "postgresql://me:***@db:5432/hpo"
    query = f"postgresql://db/hpo?user=me&password={quote(password, safe='')}"
    assert MARK not in mask(query)
    assert MARK not in scrub(f"driver said {password}", url)


def test_a_libpq_string_is_a_postgres_storage_shown_masked() -> None:
    spec = resolve_storage(
        "host=db.example port=5433 user=me password='p w@x' dbname=hpo sslmode=require"
    )
    assert spec.kind == "rdb" and spec.heartbeat
    # the driver gets the same connection: user, password, host, port, database, options
    assert spec.target == ("postgresql+psycopg2://me:p%20w%40x@db.example:5433/hpo?sslmode=require")
    assert spec.display == "postgresql+psycopg2://me:***@db.example:5433/hpo?sslmode=require"
    assert "p w@x" not in repr(spec) and "p%20w" not in repr(spec)
    socket = resolve_storage("host=/var/run/postgresql user=me password=x dbname=hpo")
    assert socket.target == "postgresql+psycopg2://me:x@/hpo?host=%2Fvar%2Frun%2Fpostgresql"


def test_a_malformed_libpq_string_is_refused_masked() -> None:
    with pytest.raises(ValueError) as info:
        resolve_storage("host=db password=Secret99 dbname='unterminated")
    assert "Secret99" not in str(info.value)
    assert "password=***" in str(info.value)


def test_an_unreachable_libpq_storage_is_one_line_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("optuna")
    from lrkit.cli import main
    from lrkit.tuning import load_result, tune

    storage = "host=127.0.0.1 port=1 user=tuner password='Top Secret99' dbname=nowhere"
    with caplog.at_level("DEBUG"), pytest.raises(ValueError) as info:
        tune(lambda p, r: 0.0, n_trials=1, storage=storage, study_name="x")
    message = str(info.value)
    assert message.startswith("cannot open storage 'postgresql+psycopg2://tuner:***@127.0.0.1:1/")
    assert "Secret99" not in message and "Secret99" not in caplog.text
    with pytest.raises(ValueError) as info:
        load_result(storage, "x")
    assert "Secret99" not in str(info.value)
    assert main(["tune", "--show", "--storage", storage, "--study", "x"]) == 2
