"""Where a study lives: SQLite file, journal file, PostgreSQL (or another SQL URL), memory.

=====================================  ==================================================
``storage=``                           storage
=====================================  ==================================================
``None`` (``workers=1``)               SQLite file ``lrkit-tune.db`` in the working directory
``None`` (``workers>1``)               journal file ``lrkit-tune.journal`` (concurrent-safe)
``"path.db"`` / ``"sqlite:///p.db"``   SQLite file (one process at a time)
``"path.journal"`` / ``"journal:p"``   Optuna journal file (several processes on one host)
``"postgresql://user:pw@host/db"``     PostgreSQL with heartbeats (many machines)
``"host=db user=u password=pw ..."``   the same, as a libpq key=value connection string
``":memory:"``                         in memory (nothing persists; one process)
=====================================  ==================================================

Passwords never leave this module unmasked: :func:`mask_url` (:mod:`lrkit._mask`) is applied to
every storage string that is logged, shown, stored in results or put into an error message, in
each form: URL user info, ``?password=``, libpq ``password=...`` (quoted or not).
"""

from __future__ import annotations

import logging
import random
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from lrkit._mask import mask, scrub
from lrkit._optional import require
from lrkit._validate import fail
from lrkit.tuning._errors import StorageError

__all__ = [
    "DEFAULT_JOURNAL",
    "DEFAULT_SQLITE",
    "StorageError",
    "StorageSpec",
    "mask_url",
    "open_storage",
    "resolve_storage",
    "scrub",
    "storage_error",
]

logger = logging.getLogger(__name__)

DEFAULT_SQLITE = "lrkit-tune.db"
DEFAULT_JOURNAL = "lrkit-tune.journal"

def mask_url(url: str) -> str:
    """Replace the password of a storage string (a URL's user info or ``?password=``, a libpq
    ``password=...`` pair) with ``***``; see :func:`lrkit._mask.mask`.

    Example:
        >>> mask_url("postgresql://me:s3cret@db.example:5432/hpo")
        'postgresql://me:***@db.example:5432/hpo'
        >>> mask_url("host=db user=me password=s3cret dbname=hpo")
        'host=db user=me password=*** dbname=hpo'
    """
    return mask(url)


# a libpq key=value connection string: "host=db user=u password='a b' dbname=hpo"
_LIBPQ_START = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_]*\s*=")
_LIBPQ_PAIR = re.compile(
    r"\s*(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*=\s*"
    r"(?P<value>'(?:[^'\\]|\\.)*'|(?:[^\s'\\]|\\.)*)(?=\s|$)"
)


def _libpq_url(text: str) -> str:
    """The PostgreSQL URL equivalent to a libpq key=value connection string."""
    pairs: dict[str, str] = {}
    pos = 0
    while pos < len(text.rstrip()):
        m = _LIBPQ_PAIR.match(text, pos)
        if m is None or m.end() == pos:
            raise ValueError(
                "storage must be a libpq connection string of key=value pairs (quote a value "
                "holding spaces: password='a b'), a database URL or a file path, but got "
                f"storage={mask(text)!r}"
            )
        value = m["value"]
        if value.startswith("'"):
            value = value[1:-1]
        pairs[m["key"].lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = m.end()
    user = pairs.pop("user", "")
    password = pairs.pop("password", None)
    host = pairs.pop("host", "")
    port = pairs.pop("port", "")
    dbname = pairs.pop("dbname", "")
    netloc = quote(user, safe="")
    if password is not None:
        netloc += ":" + quote(password, safe="")
    if netloc:
        netloc += "@"
    if host and not host.startswith("/") and "," not in host:
        netloc += f"[{host}]" if ":" in host else host
        if port:
            netloc += f":{port}"
    else:  # a Unix socket directory or a list of hosts: libpq takes them as parameters
        if host:
            pairs["host"] = host
        if port:
            pairs["port"] = port
    query = ("?" + urlencode(pairs)) if pairs else ""
    return f"postgresql://{netloc}/{quote(dbname, safe='')}{query}"


@dataclass(frozen=True)
class StorageSpec:
    """A resolved storage description (picklable: worker processes open their own)."""

    kind: str  # "sqlite", "journal", "rdb", "memory"
    # file path or SQLAlchemy URL (with password: never print this field; repr shows display)
    target: str = field(repr=False)
    heartbeat_interval: int | None = None
    grace_period: int | None = None
    max_retry: int | None = 3

    def __repr__(self) -> str:
        return f"StorageSpec({self.kind!r}, {self.display!r})"

    @property
    def display(self) -> str:
        """What may be shown to users and logs (password masked)."""
        if self.kind == "memory":
            return ":memory:"
        if self.kind == "journal":
            return f"journal:{self.target}"
        return mask_url(self.target)

    @property
    def concurrent(self) -> bool:
        """True when several processes may write to this storage at once."""
        return self.kind in ("journal", "rdb")

    @property
    def heartbeat(self) -> bool:
        return self.heartbeat_interval is not None


def _normalise_sql_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    lowered = scheme.lower()
    if lowered in ("postgresql", "postgres"):
        return f"postgresql+psycopg2://{rest}"
    return url


def resolve_storage(
    storage: object,
    *,
    workers: int = 1,
    heartbeat_interval: int = 10,
    grace_period: int | None = None,
    max_retry: int | None = 3,
) -> StorageSpec:
    """Turn the user's ``storage`` argument into a :class:`StorageSpec` (validation only).

    Raises ValueError for an unknown form, or for SQLite/memory with ``workers > 1`` (SQLite is
    not safe for concurrent writers: "database is locked").
    """
    if storage is None:
        spec = (
            StorageSpec("sqlite", f"sqlite:///{DEFAULT_SQLITE}")
            if workers == 1
            else StorageSpec("journal", DEFAULT_JOURNAL)
        )
    elif isinstance(storage, Path) or isinstance(storage, str):
        text = str(storage).strip()
        if not text:
            fail("storage", storage, "a file path or a database URL")
        if text == ":memory:":
            spec = StorageSpec("memory", "")
        elif text.startswith("journal:"):
            path = text[len("journal:") :]
            if not path:
                fail("storage", storage, "'journal:PATH' with a file path")
            spec = StorageSpec("journal", path)
        elif "://" in text:
            url = _normalise_sql_url(text)
            scheme = url.partition("://")[0].lower()
            if scheme.startswith("sqlite"):
                spec = StorageSpec("sqlite", url)
            elif scheme.startswith(("postgresql", "mysql")):
                if url.partition("://")[2].partition("/")[0].count("@") > 1:
                    # the driver would split the password at its first "@" and quote the rest
                    # back in its error message: refuse it before any connection attempt
                    fail("storage", mask_url(text), "a URL with each '@' of its password as %40")
                spec = StorageSpec(
                    "rdb",
                    url,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                    max_retry=max_retry,
                )
            else:
                raise ValueError(
                    "storage must be a sqlite://, postgresql:// or mysql:// URL, a .db or "
                    f".journal file path, or ':memory:', but got storage={mask_url(text)!r}"
                )
        elif _LIBPQ_START.match(text):
            spec = StorageSpec(
                "rdb",
                _normalise_sql_url(_libpq_url(text)),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                max_retry=max_retry,
            )
        elif text.endswith((".journal", ".log", ".jsonl")):
            spec = StorageSpec("journal", text)
        elif text.endswith((".db", ".sqlite", ".sqlite3")):
            spec = StorageSpec("sqlite", f"sqlite:///{text}")
        else:
            raise ValueError(
                "storage must be a database URL (postgresql://..., sqlite:///...), a file path "
                "ending in .db (SQLite) or .journal (journal file), or ':memory:', "
                f"but got storage={mask_url(text)!r}"
            )
    else:
        fail("storage", type(storage).__name__, "None, a file path or a database URL string")
    if workers > 1 and not spec.concurrent:
        raise ValueError(
            f"storage={spec.display!r} is not safe for {workers} concurrent worker processes "
            "(SQLite locks, memory is per process); use a journal file (e.g. "
            "storage='study.journal') or a PostgreSQL URL"
        )
    return spec


def open_storage(spec: StorageSpec) -> Any:
    """Open the Optuna storage described by ``spec``; unreachable -> ValueError (masked)."""
    optuna = require("optuna", "tune")
    if spec.kind == "memory":
        return optuna.storages.InMemoryStorage()
    if spec.kind == "journal":
        from optuna.storages.journal import JournalStorage

        from lrkit.tuning._journal import RepairingJournalBackend

        path = Path(spec.target)
        if path.parent and not path.parent.exists():
            raise StorageError(f"storage directory {str(path.parent)!r} does not exist")
        if path.is_dir():
            raise StorageError(f"cannot open journal storage {spec.display!r}: it is a directory")
        try:
            return JournalStorage(RepairingJournalBackend(str(path)))
        except StorageError:
            raise
        except Exception as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StorageError(f"cannot open journal storage {spec.display!r}: {reason}") from None
    engine_kwargs: dict[str, Any] = {}
    callback = None
    if spec.kind == "rdb":
        # small pools: every worker process holds at most a few connections (PostgreSQL's
        # default limit is 100); pre-ping survives server restarts; fail fast when unreachable.
        engine_kwargs = {"pool_pre_ping": True, "pool_size": 2, "max_overflow": 4}
        if spec.target.startswith("postgresql"):
            engine_kwargs["connect_args"] = {"connect_timeout": 10}
    else:
        database = spec.target.partition(":///")[2]
        if database and database != ":memory:":
            parent = Path(database).parent
            if not parent.exists():
                raise StorageError(f"storage directory {str(parent)!r} does not exist")
    for attempt in range(6):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                kwargs: dict[str, Any] = {}
                if spec.heartbeat:
                    callback = optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=spec.max_retry
                    )
                    kwargs = {
                        "heartbeat_interval": spec.heartbeat_interval,
                        "grace_period": spec.grace_period,
                        "heartbeat_stale_trial_callback": callback,
                    }
                storage = optuna.storages.RDBStorage(
                    spec.target, engine_kwargs=engine_kwargs, **kwargs
                )
            break
        except ImportError as exc:
            extra = " (pip install 'lrkit[postgres]')" if spec.target.startswith("postgres") else ""
            raise StorageError(
                f"cannot open storage {spec.display!r}: the database driver is missing "
                f"({exc}){extra}"
            ) from None
        except Exception as exc:
            reason = " ".join(str(exc).split())
            # workers starting together on a fresh database race to create Optuna's tables
            racing = "already exists" in reason or "duplicate key" in reason
            if racing and attempt < 5:
                time.sleep(0.2 + random.random() * 0.5)
                continue
            raise storage_error("cannot open", spec, exc) from None
    logger.info("opened storage %s", spec.display)
    return storage


def storage_error(what: str, spec: StorageSpec, exc: BaseException) -> StorageError:
    """``exc`` (a driver's, SQLAlchemy's or the file system's error) as one line that names the
    storage, password masked: ``cannot write to storage 'sqlite:///s.db': OperationalError:
    database or disk is full``."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's own error
    reason = " ".join(str(cause).split()) or type(cause).__name__
    # SQLAlchemy appends a long "(Background on this error at: ...)" hint
    reason = reason.split("(Background on this error")[0].strip()
    return StorageError(
        f"{what} storage {spec.display!r}: {type(exc).__name__}: {scrub(reason, spec.target)}"
    )


def close_storage(storage: Any) -> None:
    """Release database connections held by an RDB storage (no-op for the others)."""
    engine = getattr(storage, "engine", None)
    if engine is not None:
        try:
            storage.remove_session()
        except Exception:  # pragma: no cover - best effort at shutdown
            pass
        engine.dispose()
