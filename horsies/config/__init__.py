"""Configuration objects: frozen msgspec Structs validated when they are built."""

from __future__ import annotations

from horsies.config.app import (
    DEFAULT_CLAIM_LEASE_MS,
    DEFAULT_UNHANDLED_ERROR_CODE,
    AppConfig,
    ExceptionMapper,
    exception_mapper_problems,
)
from horsies.config.postgres import PostgresConfig, mask_url
from horsies.config.queues import CustomQueueConfig, QueueMode
from horsies.config.recovery import RecoveryConfig
from horsies.config.resilience import WorkerResilienceConfig
from horsies.config.retry import RetryPolicy, retry_policy_problem
from horsies.config.schedule import ScheduleConfig, TaskSchedule

__all__ = [
    "DEFAULT_CLAIM_LEASE_MS",
    "DEFAULT_UNHANDLED_ERROR_CODE",
    "AppConfig",
    "CustomQueueConfig",
    "ExceptionMapper",
    "PostgresConfig",
    "QueueMode",
    "RecoveryConfig",
    "RetryPolicy",
    "ScheduleConfig",
    "TaskSchedule",
    "WorkerResilienceConfig",
    "exception_mapper_problems",
    "mask_url",
    "retry_policy_problem",
]
