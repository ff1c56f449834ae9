"""Database connection settings (app-and-config.md §7, §9.1)."""

from __future__ import annotations

import importlib.util
import os
import re
from typing import Any, Final

import msgspec
import msgspec.structs

from horsies.config._check import Collector, str_problem
from horsies.errors import ConfigurationError, ErrorCode

__all__ = [
    "ACCEPTED_SCHEMES",
    "DATABASE_URL_ENV",
    "PostgresConfig",
    "database_url_error",
    "mask_url",
    "strip_driver_suffix",
]

DATABASE_URL_ENV: Final = "HORSIES_DATABASE_URL"
ACCEPTED_SCHEMES: Final = ("postgresql", "postgres", "postgresql+psycopg", "postgres+psycopg")
_DRIVER_SUFFIX: Final = "+psycopg"
_URL_HELP: Final = (
    "use postgresql://user:password@host:port/database (postgresql+psycopg://… is accepted too)"
)
_DEFAULT_MASK: Final = "***"
# libpq also reads a password from the query string: ?password=… / &password=…
_QUERY_PASSWORD_RE: Final = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)


def strip_driver_suffix(url: str) -> str:
    """``postgresql+psycopg://…`` → ``postgresql://…``; other URLs unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.endswith(_DRIVER_SUFFIX):
        return f"{scheme[: -len(_DRIVER_SUFFIX)]}://{rest}"
    return url


def mask_url(url: str, mask: str = _DEFAULT_MASK) -> str:
    """``url`` with its password (userinfo or ``password=`` parameter) replaced by ``mask``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    # The authority ends at the first '/', '?' or '#'; its userinfo before the last '@'.
    end = len(rest)
    for stop in "/?#":
        index = rest.find(stop)
        if index != -1:
            end = min(end, index)
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        authority = f"{user}:{mask}@{hostport}"
    tail = _QUERY_PASSWORD_RE.sub(lambda m: m.group(1) + mask, tail)
    return f"{scheme}://{authority}{tail}"


def _url_notes(url: str) -> list[str] | None:
    """Why ``url`` has no accepted scheme (showing only the scheme), or ``None``."""
    scheme, sep, _ = url.partition("://")
    if sep and scheme in ACCEPTED_SCHEMES:
        return None
    shown = f"scheme: {scheme!r}" if sep else "no scheme ('<scheme>://') found"
    return [shown, "accepted schemes: " + ", ".join(ACCEPTED_SCHEMES)]


def database_url_error(url: str, source: str) -> ConfigurationError | None:
    """HRS-203 naming ``source`` when ``url`` is not a supported PostgreSQL URL.

    For URLs that do not come from a ``PostgresConfig`` (command-line options,
    environment variables); the error never shows more of the URL than its scheme.
    """
    notes = _url_notes(url)
    if notes is None:
        return None
    return ConfigurationError(
        f"{source} is not a supported PostgreSQL URL",
        code=ErrorCode.BROKER_INVALID_URL,
        notes=notes,
        help_text=_URL_HELP,
    ).with_location(None)


def _check_url(checks: Collector, url: str, source: str) -> None:
    """HRS-203 when ``url`` has no accepted scheme; the error shows only the scheme."""
    notes = _url_notes(url)
    if notes is not None:
        checks.add(f"{source} is not a supported PostgreSQL URL", notes=notes, help_text=_URL_HELP)


def _env_url() -> str | None:
    value = os.environ.get(DATABASE_URL_ENV, "").strip()
    return value or None


def _pgserver_available() -> bool:
    # find_spec locates the package without importing it (no I/O beyond sys.path lookups).
    try:
        return importlib.util.find_spec("pgserver") is not None
    except (ImportError, ValueError):
        return False


class PostgresConfig(msgspec.Struct, kw_only=True, frozen=True):
    """Where the database is and how the connection pools behave."""

    database_url: str | None = None
    embedded_data_dir: str | None = None
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: int = 30
    pool_recycle: int = 1800
    pool_pre_ping: bool = True
    echo: bool = False

    def __post_init__(self) -> None:
        checks = Collector("PostgresConfig", ErrorCode.BROKER_INVALID_URL)
        env_url = _env_url()
        if env_url is not None:
            # The environment wins over the code: point an unchanged app elsewhere.
            msgspec.structs.force_setattr(self, "database_url", env_url)
            msgspec.structs.force_setattr(self, "embedded_data_dir", None)
            _check_url(checks, env_url, DATABASE_URL_ENV)
        else:
            self._check_target(checks)
        pool = ErrorCode.CONFIG_INVALID_BROKER_POOL
        checks.check_int("pool_size", self.pool_size, 1, code=pool)
        checks.check_int("max_overflow", self.max_overflow, 0, code=pool)
        checks.check_int("pool_timeout", self.pool_timeout, 1, code=pool)
        checks.check_int("pool_recycle", self.pool_recycle, 1, code=pool)
        checks.check_bool("pool_pre_ping", self.pool_pre_ping, code=pool)
        checks.check_bool("echo", self.echo, code=pool)
        checks.raise_if_any()

    def _check_target(self, checks: Collector) -> None:
        """URL or embedded directory: exactly one, each well formed."""
        url_ok = checks.add(str_problem("database_url", self.database_url, optional=True))
        dir_ok = checks.add(str_problem("embedded_data_dir", self.embedded_data_dir, optional=True))
        if not (url_ok and dir_ok):
            return
        url, data_dir = self.database_url, self.embedded_data_dir
        if url is not None and data_dir is not None:
            checks.add(
                "database_url and embedded_data_dir are both set; choose one",
                help_text="use PostgresConfig(database_url=...) or PostgresConfig.embedded()",
            )
        elif url is not None:
            _check_url(checks, url, "database_url")
        elif data_dir is not None:
            _check_embedded_dir(checks, data_dir)
        else:
            checks.add(
                "a database URL is required",
                notes=[f"database_url is None and {DATABASE_URL_ENV} is not set"],
                help_text=(
                    "set database_url (for example postgresql://user:password@host:5432/db), "
                    f"set {DATABASE_URL_ENV}, or use PostgresConfig.embedded() "
                    "for a development database"
                ),
            )

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={self._shown(name)!r}" for name in self.__struct_fields__)
        return f"{type(self).__name__}({fields})"

    def _shown(self, name: str) -> Any:
        if name == "database_url":
            return self.masked_url()
        return getattr(self, name)

    def masked_url(self, mask: str = _DEFAULT_MASK) -> str | None:
        """``database_url`` as given with its password replaced by ``mask``.

        ``None`` for the embedded database (which has no URL until it is started).
        """
        if self.database_url is None:
            return None
        return mask_url(self.database_url, mask)

    @property
    def is_embedded(self) -> bool:
        return self.database_url is None and self.embedded_data_dir is not None

    def resolve_url(self) -> str:
        """The URL to connect with: no ``+psycopg`` suffix; the embedded server's URL."""
        if self.database_url is not None:
            return strip_driver_suffix(self.database_url)
        assert self.embedded_data_dir is not None  # guaranteed by validation
        from horsies.embedded import start  # lazy: pulls in pgserver machinery

        return start(self.embedded_data_dir)

    @classmethod
    def embedded(
        cls,
        data_dir: str | os.PathLike[str] = ".horsies/pgdata",
        **options: Any,
    ) -> PostgresConfig:
        """A config for the private development database in ``data_dir``.

        ``data_dir`` is made absolute against the current directory now.
        """
        for forbidden in ("database_url", "embedded_data_dir"):
            if forbidden in options:
                raise TypeError(f"PostgresConfig.embedded() does not accept {forbidden!r}")
        path = os.fspath(data_dir) if isinstance(data_dir, (str, os.PathLike)) else data_dir
        if not isinstance(path, str):
            raise ConfigurationError(
                message=f"data_dir must be a str or os.PathLike[str] (got {type(path).__name__})",
                code=ErrorCode.BROKER_INVALID_URL,
            )
        return cls(database_url=None, embedded_data_dir=os.path.abspath(path), **options)


def _check_embedded_dir(checks: Collector, data_dir: str) -> None:
    if not data_dir or not os.path.isabs(data_dir):
        checks.add(
            f"embedded_data_dir must be an absolute path (got {data_dir!r})",
            help_text="use PostgresConfig.embedded(data_dir), which makes the path absolute",
        )
    if not _pgserver_available():
        checks.add(
            "the embedded database needs the pgserver package, which is not installed",
            code=ErrorCode.BROKER_INIT_FAILED,
            help_text="install the extra: pip install 'horsies[embedded]'",
        )
