"""horsies: a PostgreSQL-backed background task queue and workflow engine.

Everything public is importable from here; this module holds no logic.
"""

from horsies._version import __version__
from horsies.app import ChildProcessStartHook, Horsies
from horsies.codes import (
    BuiltInTaskCode,
    ContractCode,
    OperationalErrorCode,
    OutcomeCode,
    RetrievalCode,
)
from horsies.config import (
    AppConfig,
    CustomQueueConfig,
    ExceptionMapper,
    PostgresConfig,
    QueueMode,
    RecoveryConfig,
    RetryPolicy,
    WorkerResilienceConfig,
)
from horsies.errors import (
    ConfigurationError,
    ErrorCode,
    HorsiesError,
    MultipleValidationErrors,
    RegistryError,
    TaskDefinitionError,
    ValidationReport,
    WorkflowValidationError,
)
from horsies.info import (
    BrokerErrorCode,
    BrokerOperationError,
    BrokerResult,
    TaskAttemptInfo,
    TaskInfo,
)
from horsies.result import Err, Ok, Result, is_err, is_ok
from horsies.states import TASK_TERMINAL_STATES, TaskAttemptOutcome, TaskStatus
from horsies.task_result import SubWorkflowError, TaskError, TaskResult
from horsies.tasks.decorator import TaskFunction, TaskSendOptions
from horsies.tasks.handle import TaskHandle
from horsies.tasks.send_types import (
    Call,
    TaskSendError,
    TaskSendErrorCode,
    TaskSendPayload,
    TaskSendResult,
)

__all__ = [
    "TASK_TERMINAL_STATES",
    "AppConfig",
    "BrokerErrorCode",
    "BrokerOperationError",
    "BrokerResult",
    "BuiltInTaskCode",
    "Call",
    "ChildProcessStartHook",
    "ConfigurationError",
    "ContractCode",
    "CustomQueueConfig",
    "Err",
    "ErrorCode",
    "ExceptionMapper",
    "Horsies",
    "HorsiesError",
    "MultipleValidationErrors",
    "Ok",
    "OperationalErrorCode",
    "OutcomeCode",
    "PostgresConfig",
    "QueueMode",
    "RecoveryConfig",
    "RegistryError",
    "Result",
    "RetrievalCode",
    "RetryPolicy",
    "SubWorkflowError",
    "TaskAttemptInfo",
    "TaskAttemptOutcome",
    "TaskDefinitionError",
    "TaskError",
    "TaskFunction",
    "TaskHandle",
    "TaskInfo",
    "TaskResult",
    "TaskSendError",
    "TaskSendErrorCode",
    "TaskSendOptions",
    "TaskSendPayload",
    "TaskSendResult",
    "TaskStatus",
    "ValidationReport",
    "WorkerResilienceConfig",
    "WorkflowValidationError",
    "__version__",
    "is_err",
    "is_ok",
]
