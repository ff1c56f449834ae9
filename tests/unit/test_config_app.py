"""AppConfig: fields, validation rules and log_config (app-and-config.md §6,
queues-and-concurrency.md §11)."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from horsies.codes import OperationalErrorCode
from horsies.config import (
    DEFAULT_CLAIM_LEASE_MS,
    AppConfig,
    CustomQueueConfig,
    ExceptionMapper,
    PostgresConfig,
    QueueMode,
    RecoveryConfig,
    WorkerResilienceConfig,
    exception_mapper_problems,
)
from horsies.errors import ConfigurationError, ErrorCode, MultipleValidationErrors

URL = "postgresql://shop:s3cret@db:5432/shop"
QUEUE = ErrorCode.CONFIG_INVALID_QUEUE_MODE
CAP = ErrorCode.CONFIG_INVALID_CLUSTER_CAP
PREFETCH = ErrorCode.CONFIG_INVALID_PREFETCH
MAPPER = ErrorCode.CONFIG_INVALID_EXCEPTION_MAPPER


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORSIES_DATABASE_URL", raising=False)
    monkeypatch.delenv("HORSIES_CHILD_PROCESS", raising=False)


def make(**kwargs: Any) -> AppConfig:
    kwargs.setdefault("broker", PostgresConfig(database_url=URL))
    return AppConfig(**kwargs)


def errors_of(**kwargs: Any) -> list[tuple[ErrorCode | None, str]]:
    """(code, message) of every error building AppConfig(**kwargs) raises."""
    with pytest.raises((ConfigurationError, MultipleValidationErrors)) as info:
        make(**kwargs)
    error = info.value
    found = error.errors if isinstance(error, MultipleValidationErrors) else [error]
    return [(e.code, e.message) for e in found]


def custom(*names: str) -> list[CustomQueueConfig]:
    return [CustomQueueConfig(name=n) for n in names]


# --- fields and defaults ------------------------------------------------------------


def test_defaults() -> None:
    config = make()
    assert config.queue_mode is QueueMode.DEFAULT
    assert config.custom_queues is None
    assert config.cluster_wide_cap is None
    assert config.prefetch_buffer == 0
    assert config.claim_lease_ms is None
    assert config.max_claim_renew_age_ms == 180_000
    assert config.recovery == RecoveryConfig()
    assert config.resilience == WorkerResilienceConfig()
    assert config.schedule is None
    assert config.exception_mapper == {}
    assert config.default_unhandled_error_code == "UNHANDLED_EXCEPTION"
    assert config.resend_on_transient_err is False
    assert config.run_target_ms == 5
    assert config.effective_claim_lease_ms == DEFAULT_CLAIM_LEASE_MS == 60_000


def test_field_order_matches_spec() -> None:
    assert list(AppConfig.__struct_fields__) == [
        "queue_mode",
        "custom_queues",
        "broker",
        "cluster_wide_cap",
        "prefetch_buffer",
        "claim_lease_ms",
        "max_claim_renew_age_ms",
        "recovery",
        "resilience",
        "schedule",
        "exception_mapper",
        "default_unhandled_error_code",
        "resend_on_transient_err",
        "run_target_ms",
    ]


def test_mutable_defaults_not_shared() -> None:
    assert make().exception_mapper is not make().exception_mapper


def test_struct_rules() -> None:
    config = make()
    with pytest.raises(AttributeError):
        config.prefetch_buffer = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        AppConfig()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        make(queue="x")


def test_spec_example() -> None:
    config = AppConfig(
        queue_mode=QueueMode.CUSTOM,
        custom_queues=[
            CustomQueueConfig(name="payments", priority=1, max_concurrency=4),
            CustomQueueConfig(name="reports", priority=80, max_concurrency=2),
        ],
        broker=PostgresConfig(database_url="postgresql://shop:pw@db:5432/shop"),
        cluster_wide_cap=40,
        resend_on_transient_err=True,
    )
    assert [q.name for q in config.custom_queues or []] == ["payments", "reports"]


def test_repr_masks_password() -> None:
    text = repr(make())
    assert "s3cret" not in text
    assert "shop:***@db" in text


def test_custom_queues_tuple_stored_as_list() -> None:
    config = make(queue_mode=QueueMode.CUSTOM, custom_queues=tuple(custom("a", "b")))
    assert isinstance(config.custom_queues, list)


def test_exception_mapper_kept_as_given() -> None:
    mapper: ExceptionMapper = {TimeoutError: "UPSTREAM_TIMEOUT"}
    assert make(exception_mapper=mapper).exception_mapper is mapper


# --- type refusals: each field under its own code --------------------------------------


@pytest.mark.parametrize(
    ("field", "bad", "code"),
    [
        ("queue_mode", "custom", QUEUE),
        ("queue_mode", None, QUEUE),
        ("custom_queues", "abc", QUEUE),
        ("custom_queues", [{"name": "a"}], QUEUE),
        ("broker", URL, ErrorCode.BROKER_INVALID_URL),
        ("broker", None, ErrorCode.BROKER_INVALID_URL),
        ("cluster_wide_cap", True, CAP),
        ("cluster_wide_cap", "10", CAP),
        ("cluster_wide_cap", 10.0, CAP),
        ("prefetch_buffer", False, PREFETCH),
        ("prefetch_buffer", None, PREFETCH),
        ("claim_lease_ms", True, PREFETCH),
        ("claim_lease_ms", "5000", PREFETCH),
        ("max_claim_renew_age_ms", True, PREFETCH),
        ("max_claim_renew_age_ms", None, PREFETCH),
        ("recovery", {}, ErrorCode.CONFIG_INVALID_RECOVERY),
        ("recovery", None, ErrorCode.CONFIG_INVALID_RECOVERY),
        ("resilience", RecoveryConfig(), ErrorCode.CONFIG_INVALID_RESILIENCE),
        ("schedule", {"schedules": []}, ErrorCode.CONFIG_INVALID_SCHEDULE),
        ("exception_mapper", [(TimeoutError, "X")], MAPPER),
        ("exception_mapper", None, MAPPER),
        ("default_unhandled_error_code", None, MAPPER),
        ("default_unhandled_error_code", 5, MAPPER),
        ("resend_on_transient_err", 1, ErrorCode.CONFIG_INVALID_RESILIENCE),
        ("resend_on_transient_err", None, ErrorCode.CONFIG_INVALID_RESILIENCE),
    ],
)
def test_type_refusals(field: str, bad: Any, code: ErrorCode) -> None:
    found = errors_of(**{field: bad})
    assert len(found) == 1
    assert found[0][0] is code
    assert field in found[0][1]


# --- queue rules 1-3 ------------------------------------------------------------------


def test_default_mode_refuses_custom_queues() -> None:
    assert errors_of(custom_queues=custom("a")) == [
        (QUEUE, "custom_queues must be None in DEFAULT mode")
    ]
    # an empty list counts as "not None"
    assert errors_of(custom_queues=[]) == [(QUEUE, "custom_queues must be None in DEFAULT mode")]


@pytest.mark.parametrize("queues", [None, [], ()])
def test_custom_mode_needs_queues(queues: Any) -> None:
    assert errors_of(queue_mode=QueueMode.CUSTOM, custom_queues=queues) == [
        (QUEUE, "custom_queues required in CUSTOM mode")
    ]


def test_duplicate_queue_names() -> None:
    with pytest.raises(ConfigurationError) as info:
        make(queue_mode=QueueMode.CUSTOM, custom_queues=custom("a", "b", "a", "c", "b"))
    assert info.value.code is QUEUE
    assert info.value.message == "duplicate queue names in custom_queues"
    assert any("'a'" in note and "'b'" in note and "'c'" not in note for note in info.value.notes)


# --- concurrency rules 4-11 -------------------------------------------------------------


def test_cluster_wide_cap() -> None:
    assert make(cluster_wide_cap=1).cluster_wide_cap == 1
    assert errors_of(cluster_wide_cap=0) == [(CAP, "cluster_wide_cap must be positive")]
    assert errors_of(cluster_wide_cap=-5) == [(CAP, "cluster_wide_cap must be positive")]


def test_prefetch_buffer() -> None:
    assert make(prefetch_buffer=0).prefetch_buffer == 0
    assert errors_of(prefetch_buffer=-1) == [(PREFETCH, "prefetch_buffer must be non-negative")]
    assert errors_of(prefetch_buffer=1) == [
        (PREFETCH, "claim_lease_ms required when prefetch_buffer > 0")
    ]


def test_soft_cap_example_is_valid() -> None:
    config = make(prefetch_buffer=4, claim_lease_ms=5000)
    assert config.effective_claim_lease_ms == 5000
    make(prefetch_buffer=1, claim_lease_ms=1)


def test_claim_lease() -> None:
    assert make(claim_lease_ms=1).claim_lease_ms == 1
    assert make(claim_lease_ms=180_000).effective_claim_lease_ms == 180_000
    assert errors_of(claim_lease_ms=0) == [(PREFETCH, "claim_lease_ms must be positive")]
    assert errors_of(claim_lease_ms=-1) == [(PREFETCH, "claim_lease_ms must be positive")]


def test_max_claim_renew_age() -> None:
    assert errors_of(max_claim_renew_age_ms=0) == [
        (PREFETCH, "max_claim_renew_age_ms must be positive")
    ]
    # below the default 60 000 ms lease
    assert errors_of(max_claim_renew_age_ms=59_999) == [
        (PREFETCH, "max_claim_renew_age_ms must be >= effective claim lease")
    ]
    make(max_claim_renew_age_ms=60_000)
    make(max_claim_renew_age_ms=1, claim_lease_ms=1)
    assert errors_of(max_claim_renew_age_ms=5_000, claim_lease_ms=5_001) == [
        (PREFETCH, "max_claim_renew_age_ms must be >= effective claim lease")
    ]


def test_cap_incompatible_with_prefetch() -> None:
    found = errors_of(cluster_wide_cap=10, prefetch_buffer=2, claim_lease_ms=5_000)
    assert found == [(CAP, "cluster_wide_cap incompatible with prefetch mode")]
    with pytest.raises(ConfigurationError) as info:
        make(cluster_wide_cap=10, prefetch_buffer=2, claim_lease_ms=5_000)
    assert info.value.help_text is not None and "prefetch_buffer=0" in info.value.help_text


def test_spec_collected_example() -> None:
    found = errors_of(
        queue_mode=QueueMode.CUSTOM, custom_queues=[], cluster_wide_cap=0, prefetch_buffer=2
    )
    assert found == [
        (QUEUE, "custom_queues required in CUSTOM mode"),
        (CAP, "cluster_wide_cap must be positive"),
        (PREFETCH, "claim_lease_ms required when prefetch_buffer > 0"),
        (CAP, "cluster_wide_cap incompatible with prefetch mode"),
    ]


def test_collected_rendering() -> None:
    with pytest.raises(MultipleValidationErrors) as info:
        make(cluster_wide_cap=0, prefetch_buffer=-1)
    text = str(info.value)
    assert "error[HRS-201]: cluster_wide_cap must be positive" in text
    assert "error[HRS-202]: prefetch_buffer must be non-negative" in text
    assert text.endswith("error: aborting due to 2 previous errors")


# --- exception mapper and default code (rules 11, 12) ------------------------------------


def test_valid_mapper_and_default_code() -> None:
    config = make(
        exception_mapper={TimeoutError: "UPSTREAM_TIMEOUT", KeyboardInterrupt: "STOPPED"},
        default_unhandled_error_code="APP_FAILED",
    )
    assert config.default_unhandled_error_code == "APP_FAILED"
    # built-in codes are accepted at construction (app.check() reports them)
    make(
        exception_mapper={ValueError: "BROKER_ERROR"},
        default_unhandled_error_code=OperationalErrorCode.TASK_EXCEPTION,
    )


def test_mapper_one_error_per_problem() -> None:
    found = errors_of(
        exception_mapper={
            TimeoutError: "TimeoutError",
            "KeyError": "KEY",  # not a class
            int: "",  # not an exception class, empty code
            ValueError: 5,
        }
    )
    assert [code for code, _ in found] == [MAPPER] * 5
    messages = " | ".join(message for _, message in found)
    assert "looks like an exception class name" in messages
    assert "'KeyError'" in messages
    assert "must not be empty" in messages


@pytest.mark.parametrize("bad", ["", "lower", "TimeoutError", "Bad-Code", "1ABC"])
def test_default_code_refused(bad: str) -> None:
    found = errors_of(default_unhandled_error_code=bad)
    assert len(found) == 1 and found[0][0] is MAPPER
    assert found[0][1].startswith("default_unhandled_error_code")


def test_exception_mapper_problems_helper() -> None:
    assert exception_mapper_problems({OSError: "IO"}) == []
    assert exception_mapper_problems({OSError: "io"}, field="task mapper")[0].startswith(
        "task mapper[OSError]"
    )
    assert len(exception_mapper_problems([])) == 1


def test_everything_collected_in_order() -> None:
    found = errors_of(
        queue_mode=QueueMode.DEFAULT,
        custom_queues=custom("a"),
        cluster_wide_cap=-1,
        prefetch_buffer=-1,
        claim_lease_ms=0,
        max_claim_renew_age_ms=0,
        exception_mapper={ValueError: "x"},
        default_unhandled_error_code="y",
    )
    assert [code for code, _ in found] == [
        QUEUE,
        CAP,
        PREFETCH,
        PREFETCH,
        PREFETCH,
        MAPPER,
        MAPPER,
    ]


# --- log_config -----------------------------------------------------------------------


def test_log_config(caplog: pytest.LogCaptureFixture) -> None:
    config = make(
        queue_mode=QueueMode.CUSTOM,
        custom_queues=[
            CustomQueueConfig(name="payments", priority=1, max_concurrency=4),
            CustomQueueConfig(name="reports", priority=80, max_concurrency=2),
        ],
        cluster_wide_cap=40,
        exception_mapper={TimeoutError: "T"},
        default_unhandled_error_code="APP_FAILED",
    )
    with caplog.at_level(logging.INFO, logger="horsies"):
        config.log_config()
    assert len(caplog.records) == 1
    record = caplog.records[0]
    assert record.levelno == logging.INFO and record.name == "horsies"
    text = record.getMessage()
    assert text.startswith(
        "AppConfig:\n"
        "  queue_mode: CUSTOM\n"
        "  custom_queues:\n"
        "    - payments (priority=1, max_concurrency=4)\n"
        "    - reports (priority=80, max_concurrency=2)\n"
        "  cluster_wide_cap: 40\n"
        "  prefetch_buffer: 0\n"
        "  broker:\n"
        "    database_url: postgresql://shop:***@db:5432/shop\n"
        "    pool_size: 5\n"
        "    max_overflow: 10\n"
    )
    assert "s3cret" not in text
    assert "claimed_stale_threshold_ms: 120000" in text
    assert "db_retry_initial_ms: 500" in text
    assert "resend_on_transient_err: False" in text
    assert "exception_mapper: 1 entries" in text
    assert "default_unhandled_error_code: APP_FAILED" in text
    assert "claim_lease_ms" not in text.replace("claim_lease_ms:", "")  # unset -> omitted


def test_log_config_defaults_omitted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.config")
    with caplog.at_level(logging.INFO, logger="test.config"):
        make(claim_lease_ms=70_000, max_claim_renew_age_ms=70_000).log_config(logger)
    text = caplog.records[0].getMessage()
    assert "  queue_mode: DEFAULT" in text
    assert "custom_queues" not in text
    assert "cluster_wide_cap" not in text
    assert "  claim_lease_ms: 70000" in text
    assert "exception_mapper" not in text
    assert "default_unhandled_error_code" not in text
    assert "schedule" not in text


def test_log_config_embedded(caplog: pytest.LogCaptureFixture, tmp_path: Any) -> None:
    config = make(broker=PostgresConfig.embedded(tmp_path))
    with caplog.at_level(logging.INFO, logger="horsies"):
        config.log_config()
    assert f"    embedded_data_dir: {tmp_path}" in caplog.records[0].getMessage()


def test_log_config_silent_in_child(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HORSIES_CHILD_PROCESS", "1")
    with caplog.at_level(logging.DEBUG):
        make().log_config()
    assert caplog.records == []


def test_run_target() -> None:
    assert make(run_target_ms=1).run_target_ms == 1
    assert make(run_target_ms=10_000).run_target_ms == 10_000
    for bad in (0, 10_001, -3):
        [(code, message)] = errors_of(run_target_ms=bad)
        assert code is PREFETCH and message.startswith("run_target_ms must be between 1 and 10000")
    [(code, message)] = errors_of(run_target_ms=2.5)
    assert code is PREFETCH and message.startswith("run_target_ms")
