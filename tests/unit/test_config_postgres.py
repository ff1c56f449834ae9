"""PostgresConfig: fields, URL rules, env override, masking, embedded (app-and-config.md §7, §9)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from horsies.config import PostgresConfig, mask_url
from horsies.errors import ConfigurationError, ErrorCode, MultipleValidationErrors

URL = "postgresql://shop:s3cret@db.internal:5432/shop"
ENV = "HORSIES_DATABASE_URL"


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


@pytest.fixture
def no_pgserver(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == "pgserver" else real(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


def test_defaults() -> None:
    config = PostgresConfig(database_url=URL)
    assert config.database_url == URL
    assert config.embedded_data_dir is None
    assert config.pool_size == 5
    assert config.max_overflow == 10
    assert config.pool_timeout == 30
    assert config.pool_recycle == 1800
    assert config.pool_pre_ping is True
    assert config.echo is False


def test_struct_rules() -> None:
    config = PostgresConfig(database_url=URL)
    with pytest.raises(AttributeError):
        config.pool_size = 9  # type: ignore[misc]
    with pytest.raises(TypeError):
        PostgresConfig(database_url=URL, pool_max=3)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        PostgresConfig(URL)  # type: ignore[call-arg]


# --- URL rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "resolved"),
    [
        ("postgresql://u:p@h:5432/d", "postgresql://u:p@h:5432/d"),
        ("postgres://u:p@h/d", "postgres://u:p@h/d"),
        ("postgresql+psycopg://u:p@h:5432/d", "postgresql://u:p@h:5432/d"),
        ("postgres+psycopg://h/d?sslmode=require", "postgres://h/d?sslmode=require"),
        ("postgresql:///d?host=/run/pg", "postgresql:///d?host=/run/pg"),
    ],
)
def test_accepted_schemes(url: str, resolved: str) -> None:
    config = PostgresConfig(database_url=url)
    assert config.database_url == url  # kept as given
    assert config.resolve_url() == resolved


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("postgresql+psycopg2://u:topsecret@h/d", "'postgresql+psycopg2'"),
        ("postgresql+asyncpg://u:topsecret@h/d", "'postgresql+asyncpg'"),
        ("mysql://u:topsecret@h/d", "'mysql'"),
        ("POSTGRESQL://u:topsecret@h/d", "'POSTGRESQL'"),
        ("u:topsecret@h/d", None),
        ("", None),
    ],
)
def test_refused_urls_show_only_the_scheme(url: str, scheme: str | None) -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(database_url=url)
    error = info.value
    assert error.code is ErrorCode.BROKER_INVALID_URL
    assert "database_url" in error.message
    rendered = str(error)
    assert "topsecret" not in rendered
    assert "@h/d" not in rendered
    if scheme is not None:
        assert any(scheme in note for note in error.notes)
    assert error.help_text is not None and "postgresql://" in error.help_text


def test_url_type() -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(database_url=b"postgresql://h/d")  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.BROKER_INVALID_URL
    assert info.value.message.startswith("database_url must be a str or None")


def test_url_required() -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig()
    assert info.value.code is ErrorCode.BROKER_INVALID_URL
    assert info.value.message == "a database URL is required"


def test_url_and_embedded_dir_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(database_url=URL, embedded_data_dir=str(tmp_path))
    assert info.value.code is ErrorCode.BROKER_INVALID_URL
    assert "choose one" in info.value.message


# --- pool fields -----------------------------------------------------------------

POOL_MINIMUMS = {"pool_size": 1, "max_overflow": 0, "pool_timeout": 1, "pool_recycle": 1}


@pytest.mark.parametrize("field", list(POOL_MINIMUMS))
def test_pool_int_edges(field: str) -> None:
    lo = POOL_MINIMUMS[field]
    values: dict[str, Any] = {field: lo}
    assert getattr(PostgresConfig(database_url=URL, **values), field) == lo
    values = {field: 10**6}
    assert getattr(PostgresConfig(database_url=URL, **values), field) == 10**6
    values = {field: lo - 1}
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(database_url=URL, **values)
    assert info.value.code is ErrorCode.CONFIG_INVALID_BROKER_POOL
    assert info.value.message == f"{field} must be >= {lo} (got {lo - 1})"


@pytest.mark.parametrize("field", list(POOL_MINIMUMS))
@pytest.mark.parametrize("bad", [True, "5", 5.0, None])
def test_pool_int_types(field: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(database_url=URL, **{field: bad})
    assert info.value.code is ErrorCode.CONFIG_INVALID_BROKER_POOL
    assert info.value.message.startswith(f"{field} must be an int")


@pytest.mark.parametrize("field", ["pool_pre_ping", "echo"])
@pytest.mark.parametrize("bad", [1, 0, "true", None])
def test_pool_bool_types(field: str, bad: Any) -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(database_url=URL, **{field: bad})
    assert info.value.code is ErrorCode.CONFIG_INVALID_BROKER_POOL
    assert info.value.message.startswith(f"{field} must be a bool")


def test_problems_collected() -> None:
    with pytest.raises(MultipleValidationErrors) as info:
        PostgresConfig(database_url="mysql://h/d", pool_size=0, echo=1)  # type: ignore[arg-type]
    assert [e.code for e in info.value.errors] == [
        ErrorCode.BROKER_INVALID_URL,
        ErrorCode.CONFIG_INVALID_BROKER_POOL,
        ErrorCode.CONFIG_INVALID_BROKER_POOL,
    ]


# --- masking ---------------------------------------------------------------------


def test_repr_masks_password() -> None:
    config = PostgresConfig(database_url=URL)
    text = repr(config)
    assert "s3cret" not in text
    assert "postgresql://shop:***@db.internal:5432/shop" in text
    assert text.startswith("PostgresConfig(database_url=")
    assert "pool_size=5" in text
    assert config.database_url == URL  # the field itself is intact


def test_masked_url() -> None:
    config = PostgresConfig(database_url="postgresql+psycopg://shop:pw@db.internal:5432/shop")
    assert config.masked_url("****") == "postgresql+psycopg://shop:****@db.internal:5432/shop"
    assert config.masked_url() == "postgresql+psycopg://shop:***@db.internal:5432/shop"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://u:p@h/d", "postgresql://u:***@h/d"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("postgresql://h/d", "postgresql://h/d"),
        ("postgresql://u:p%40ss@h/d", "postgresql://u:***@h/d"),
        ("postgresql://u:p@ss@h/d", "postgresql://u:***@h/d"),
        (
            "postgresql://u:p@h/d?password=x&sslmode=require",
            "postgresql://u:***@h/d?password=***&sslmode=require",
        ),
        ("postgresql:///d?user=u&password=x", "postgresql:///d?user=u&password=***"),
        ("postgresql://u:p@h", "postgresql://u:***@h"),
    ],
)
def test_mask_url_forms(url: str, masked: str) -> None:
    assert mask_url(url) == masked


# --- HORSIES_DATABASE_URL ----------------------------------------------------------


def test_env_override_replaces_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "  postgresql+psycopg://ci:pw@ci-db/test  ")
    config = PostgresConfig(database_url=URL)
    assert config.database_url == "postgresql+psycopg://ci:pw@ci-db/test"
    assert config.resolve_url() == "postgresql://ci:pw@ci-db/test"


def test_env_override_replaces_missing_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "postgres://ci/test")
    assert PostgresConfig().database_url == "postgres://ci/test"


def test_env_override_disables_embedded(monkeypatch: pytest.MonkeyPatch, no_pgserver: None) -> None:
    monkeypatch.setenv(ENV, "postgres://ci/test")
    config = PostgresConfig.embedded()  # the pgserver check is skipped
    assert config.database_url == "postgres://ci/test"
    assert config.embedded_data_dir is None
    assert not config.is_embedded


def test_env_override_blank_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "   ")
    assert PostgresConfig(database_url=URL).database_url == URL


def test_env_override_invalid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "mysql://u:topsecret@h/d")
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(database_url=URL)
    assert info.value.code is ErrorCode.BROKER_INVALID_URL
    assert ENV in info.value.message
    assert "topsecret" not in str(info.value)


def test_env_read_only_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    config = PostgresConfig(database_url=URL)
    monkeypatch.setenv(ENV, "postgres://ci/test")
    assert config.database_url == URL
    assert config.resolve_url() == URL


# --- embedded --------------------------------------------------------------------


def test_embedded_default_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    config = PostgresConfig.embedded()
    assert config.database_url is None
    assert config.embedded_data_dir == os.path.join(str(tmp_path), ".horsies", "pgdata")
    assert config.is_embedded
    assert config.masked_url() is None
    assert "embedded_data_dir=" in repr(config)


def test_embedded_dir_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert PostgresConfig.embedded("data").embedded_data_dir == str(tmp_path / "data")
    assert PostgresConfig.embedded(tmp_path / "x").embedded_data_dir == str(tmp_path / "x")


def test_embedded_options(tmp_path: Path) -> None:
    config = PostgresConfig.embedded(tmp_path, pool_size=2, echo=True)
    assert (config.pool_size, config.echo) == (2, True)
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig.embedded(tmp_path, pool_size=0)
    assert info.value.code is ErrorCode.CONFIG_INVALID_BROKER_POOL
    with pytest.raises(TypeError):
        PostgresConfig.embedded(tmp_path, unknown=1)


@pytest.mark.parametrize("forbidden", ["database_url", "embedded_data_dir"])
def test_embedded_refuses_url_options(forbidden: str, tmp_path: Path) -> None:
    with pytest.raises(TypeError):
        PostgresConfig.embedded(tmp_path, **{forbidden: URL})


def test_embedded_bad_data_dir() -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig.embedded(5)  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.BROKER_INVALID_URL


def test_embedded_without_pgserver(no_pgserver: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig.embedded(tmp_path)
    assert info.value.code is ErrorCode.BROKER_INIT_FAILED
    assert info.value.help_text is not None and "horsies[embedded]" in info.value.help_text


def test_embedded_does_not_import_pgserver(tmp_path: Path) -> None:
    import sys

    was_loaded = "pgserver" in sys.modules
    PostgresConfig.embedded(tmp_path)
    assert ("pgserver" in sys.modules) == was_loaded


def test_embedded_dir_must_be_absolute() -> None:
    with pytest.raises(ConfigurationError) as info:
        PostgresConfig(embedded_data_dir="relative/dir")
    assert info.value.code is ErrorCode.BROKER_INVALID_URL
    assert "absolute" in info.value.message
