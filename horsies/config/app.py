"""The application configuration (app-and-config.md §6, queues-and-concurrency.md §11)."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Sequence
from typing import Final, TypeAlias, cast

import msgspec
import msgspec.structs

from horsies.codes import OperationalErrorCode, error_code_problem
from horsies.config._check import Collector, sequence_problem
from horsies.config.postgres import PostgresConfig
from horsies.config.queues import CustomQueueConfig, QueueMode
from horsies.config.recovery import RecoveryConfig
from horsies.config.resilience import WorkerResilienceConfig
from horsies.config.schedule import ScheduleConfig
from horsies.errors import ErrorCode

__all__ = [
    "DEFAULT_CLAIM_LEASE_MS",
    "DEFAULT_UNHANDLED_ERROR_CODE",
    "AppConfig",
    "ExceptionMapper",
    "error_code_field_problem",
    "exception_mapper_problems",
]

ExceptionMapper: TypeAlias = dict[type[BaseException], str]
"""Map from exception class (exact match) to error code."""

DEFAULT_CLAIM_LEASE_MS: Final = 60_000
DEFAULT_UNHANDLED_ERROR_CODE: Final = OperationalErrorCode.UNHANDLED_EXCEPTION.value

_CAP = ErrorCode.CONFIG_INVALID_CLUSTER_CAP
_PREFETCH = ErrorCode.CONFIG_INVALID_PREFETCH
_QUEUES = ErrorCode.CONFIG_INVALID_QUEUE_MODE
_MAPPER = ErrorCode.CONFIG_INVALID_EXCEPTION_MAPPER


def error_code_field_problem(name: str, value: object) -> str | None:
    """``<name>: <why the value is not a valid error-code string>``, or ``None``."""
    problem = error_code_problem(value)
    return None if problem is None else f"{name}: {problem}"


def exception_mapper_problems(mapper: object, field: str = "exception_mapper") -> list[str]:
    """One message per invalid entry of an exception mapper (empty when valid).

    Shared by ``AppConfig``, the task decorator and ``app.check()``, which wrap
    the messages in their own error types (all with code HRS-209).
    """
    if not isinstance(mapper, dict):
        return [
            (
                f"{field} must be a dict of exception class to error code "
                f"(got {type(mapper).__name__})"
            )
        ]
    problems: list[str] = []
    for key, value in list(mapper.items()):
        label = getattr(key, "__name__", None) or repr(key)
        if not (isinstance(key, type) and issubclass(key, BaseException)):
            problems.append(
                f"{field} key {key!r} must be an exception class (a subclass of BaseException)"
            )
        problem = error_code_field_problem(f"{field}[{label}]", value)
        if problem is not None:
            problems.append(problem)
    return problems


MAX_RUN_TARGET_MS = 10_000


class AppConfig(msgspec.Struct, kw_only=True, frozen=True):
    """Everything an app needs: queues, broker, concurrency, recovery, error codes."""

    queue_mode: QueueMode = QueueMode.DEFAULT
    custom_queues: list[CustomQueueConfig] | None = None
    broker: PostgresConfig
    cluster_wide_cap: int | None = None
    prefetch_buffer: int = 0
    claim_lease_ms: int | None = None
    max_claim_renew_age_ms: int = 180_000
    recovery: RecoveryConfig = msgspec.field(default_factory=RecoveryConfig)
    resilience: WorkerResilienceConfig = msgspec.field(default_factory=WorkerResilienceConfig)
    schedule: ScheduleConfig | None = None
    exception_mapper: ExceptionMapper = msgspec.field(default_factory=dict)
    default_unhandled_error_code: str = DEFAULT_UNHANDLED_ERROR_CODE
    resend_on_transient_err: bool = False
    # Work a child is handed at once without caps, in milliseconds (runs.md §1).
    run_target_ms: int = 5

    def __post_init__(self) -> None:
        checks = Collector("AppConfig", _QUEUES)
        ok = _check_types(self, checks)
        if ok["custom_queues"] and self.custom_queues is not None:
            # Any sequence is accepted; a list is what is stored.
            msgspec.structs.force_setattr(self, "custom_queues", list(self.custom_queues))
        _check_queues(self, checks, ok)
        _check_concurrency(self, checks, ok)
        if ok["exception_mapper"]:
            for problem in exception_mapper_problems(self.exception_mapper):
                checks.add(problem, code=_MAPPER)
        if ok["default_unhandled_error_code"]:
            checks.add(
                error_code_field_problem(
                    "default_unhandled_error_code", self.default_unhandled_error_code
                ),
                code=_MAPPER,
            )
        checks.raise_if_any()

    @property
    def effective_claim_lease_ms(self) -> int:
        """``claim_lease_ms``, or the built-in 60 000 ms lease when it is ``None``."""
        return DEFAULT_CLAIM_LEASE_MS if self.claim_lease_ms is None else self.claim_lease_ms

    def log_config(self, logger: logging.Logger | None = None) -> None:
        """Log the configuration at INFO as one message; never the password."""
        if os.environ.get("HORSIES_CHILD_PROCESS") == "1":
            return
        (logger or logging.getLogger("horsies")).info("\n".join(self._describe()))

    def _describe(self) -> list[str]:
        lines = ["AppConfig:", f"  queue_mode: {self.queue_mode.name}"]
        if self.custom_queues:
            lines.append("  custom_queues:")
            lines.extend(
                f"    - {q.name} (priority={q.priority}, max_concurrency={q.max_concurrency})"
                for q in self.custom_queues
            )
        if self.cluster_wide_cap is not None:
            lines.append(f"  cluster_wide_cap: {self.cluster_wide_cap}")
        lines.append(f"  prefetch_buffer: {self.prefetch_buffer}")
        if self.claim_lease_ms is not None:
            lines.append(f"  claim_lease_ms: {self.claim_lease_ms}")
        lines.append("  broker:")
        if self.broker.database_url is not None:
            lines.append(f"    database_url: {self.broker.masked_url()}")
        else:
            lines.append(f"    embedded_data_dir: {self.broker.embedded_data_dir}")
        lines.append(f"    pool_size: {self.broker.pool_size}")
        lines.append(f"    max_overflow: {self.broker.max_overflow}")
        lines.extend(_struct_lines("recovery", self.recovery))
        lines.extend(_struct_lines("resilience", self.resilience))
        lines.append(f"  resend_on_transient_err: {self.resend_on_transient_err}")
        if self.exception_mapper:
            lines.append(f"  exception_mapper: {len(self.exception_mapper)} entries")
        if self.default_unhandled_error_code != DEFAULT_UNHANDLED_ERROR_CODE:
            lines.append(f"  default_unhandled_error_code: {self.default_unhandled_error_code}")
        if self.schedule is not None:
            lines.extend(_schedule_lines(self.schedule))
        return lines


def _struct_lines(title: str, struct: msgspec.Struct) -> list[str]:
    return [f"  {title}:"] + [
        f"    {name}: {getattr(struct, name)}" for name in struct.__struct_fields__
    ]


def _schedule_lines(schedule: ScheduleConfig) -> list[str]:
    lines = [
        "  schedule:",
        f"    enabled: {schedule.enabled}",
        f"    check_interval_seconds: {schedule.check_interval_seconds}",
        f"    schedules: {len(schedule.schedules)}",
    ]
    lines.extend(
        f"      - {e.name} -> {e.task_name} ({e.pattern.summary()}, {e.timezone})"
        + ("" if e.enabled else " [disabled]")
        for e in schedule.schedules
    )
    return lines


def _check_types(config: AppConfig, checks: Collector) -> dict[str, bool]:
    """Type of every field, each under its own code; which fields passed."""
    ok = {
        "queue_mode": checks.check_instance("queue_mode", config.queue_mode, QueueMode),
        "custom_queues": _check_custom_queues(config.custom_queues, checks),
        "broker": checks.check_instance(
            "broker", config.broker, PostgresConfig, code=ErrorCode.BROKER_INVALID_URL
        ),
        "cluster_wide_cap": checks.check_int(
            "cluster_wide_cap", config.cluster_wide_cap, optional=True, code=_CAP
        ),
        "prefetch_buffer": checks.check_int(
            "prefetch_buffer", config.prefetch_buffer, code=_PREFETCH
        ),
        "claim_lease_ms": checks.check_int(
            "claim_lease_ms", config.claim_lease_ms, optional=True, code=_PREFETCH
        ),
        "max_claim_renew_age_ms": checks.check_int(
            "max_claim_renew_age_ms", config.max_claim_renew_age_ms, code=_PREFETCH
        ),
        "run_target_ms": checks.check_int(
            "run_target_ms", config.run_target_ms, 1, MAX_RUN_TARGET_MS, code=_PREFETCH
        ),
        "recovery": checks.check_instance(
            "recovery", config.recovery, RecoveryConfig, code=ErrorCode.CONFIG_INVALID_RECOVERY
        ),
        "resilience": checks.check_instance(
            "resilience",
            config.resilience,
            WorkerResilienceConfig,
            code=ErrorCode.CONFIG_INVALID_RESILIENCE,
        ),
        "schedule": _check_schedule(config.schedule, checks),
        "exception_mapper": checks.check_instance(
            "exception_mapper", config.exception_mapper, dict, code=_MAPPER
        ),
        "default_unhandled_error_code": checks.check_instance(
            "default_unhandled_error_code",
            config.default_unhandled_error_code,
            str,
            code=_MAPPER,
        ),
        "resend_on_transient_err": checks.check_bool(
            "resend_on_transient_err",
            config.resend_on_transient_err,
            code=ErrorCode.CONFIG_INVALID_RESILIENCE,
        ),
    }
    return ok


def _check_custom_queues(queues: object, checks: Collector) -> bool:
    if not checks.add(sequence_problem("custom_queues", queues, optional=True)):
        return False
    if queues is None:
        return True
    fine = True
    for index, queue in enumerate(cast("Sequence[object]", queues)):
        fine = checks.check_instance(f"custom_queues[{index}]", queue, CustomQueueConfig) and fine
    return fine


def _check_schedule(schedule: object, checks: Collector) -> bool:
    return checks.check_instance(
        "schedule", schedule, ScheduleConfig, optional=True, code=ErrorCode.CONFIG_INVALID_SCHEDULE
    )


def _check_queues(config: AppConfig, checks: Collector, ok: dict[str, bool]) -> None:
    """Rules 1–3 of app-and-config.md §6.2."""
    if not (ok["queue_mode"] and ok["custom_queues"]):
        return
    queues = config.custom_queues
    if config.queue_mode is QueueMode.DEFAULT:
        if queues is not None:
            checks.add(
                "custom_queues must be None in DEFAULT mode",
                help_text="remove custom_queues, or set queue_mode=QueueMode.CUSTOM",
            )
        return
    if not queues:
        checks.add(
            "custom_queues required in CUSTOM mode",
            help_text="give at least one CustomQueueConfig(name=...) in custom_queues",
        )
        return
    duplicates = sorted(n for n, c in Counter(q.name for q in queues).items() if c > 1)
    if duplicates:
        checks.add(
            "duplicate queue names in custom_queues",
            notes=["duplicated: " + ", ".join(repr(n) for n in duplicates)],
        )


def _check_concurrency(config: AppConfig, checks: Collector, ok: dict[str, bool]) -> None:
    """Rules 4–10 of app-and-config.md §6.2 (checks 4–11 of queues-and-concurrency.md §11)."""
    cap = config.cluster_wide_cap if ok["cluster_wide_cap"] else None
    prefetch = config.prefetch_buffer if ok["prefetch_buffer"] else None
    lease_ok = ok["claim_lease_ms"]
    lease = config.claim_lease_ms
    if cap is not None and cap <= 0:
        checks.add(
            "cluster_wide_cap must be positive", code=_CAP, notes=[f"cluster_wide_cap = {cap}"]
        )
    if prefetch is not None and prefetch < 0:
        checks.add(
            "prefetch_buffer must be non-negative",
            code=_PREFETCH,
            notes=[f"prefetch_buffer = {prefetch}"],
        )
    if prefetch is not None and prefetch > 0 and lease_ok and lease is None:
        checks.add(
            "claim_lease_ms required when prefetch_buffer > 0",
            code=_PREFETCH,
            help_text="set claim_lease_ms (for example 5000) or use prefetch_buffer=0",
        )
    if lease_ok and lease is not None and lease <= 0:
        checks.add(
            "claim_lease_ms must be positive", code=_PREFETCH, notes=[f"claim_lease_ms = {lease}"]
        )
    if ok["max_claim_renew_age_ms"]:
        _check_renew_age(config, checks, lease_ok)
    if cap is not None and prefetch is not None and prefetch > 0:
        checks.add(
            "cluster_wide_cap incompatible with prefetch mode",
            code=_CAP,
            help_text="set prefetch_buffer=0 when using cluster_wide_cap",
        )


def _check_renew_age(config: AppConfig, checks: Collector, lease_ok: bool) -> None:
    renew_age = config.max_claim_renew_age_ms
    if renew_age <= 0:
        checks.add(
            "max_claim_renew_age_ms must be positive",
            code=_PREFETCH,
            notes=[f"max_claim_renew_age_ms = {renew_age}"],
        )
        return
    if not lease_ok:
        return
    lease = config.effective_claim_lease_ms
    if renew_age < lease:
        checks.add(
            "max_claim_renew_age_ms must be >= effective claim lease",
            code=_PREFETCH,
            notes=[f"max_claim_renew_age_ms = {renew_age}", f"effective claim lease = {lease}"],
            help_text=f"set max_claim_renew_age_ms >= {lease} or lower claim_lease_ms",
        )
