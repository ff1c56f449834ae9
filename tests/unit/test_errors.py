"""The HorsiesError family, ErrorCode and rendering (results-and-errors.md §12)."""

from __future__ import annotations

import pickle
import sys
import textwrap
from pathlib import Path

import pytest

from horsies.errors import (
    ConfigurationError,
    DuplicateTaskNameError,
    ErrorCode,
    HorsiesError,
    MultipleValidationErrors,
    NotRegistered,
    RegistryError,
    SourceLocation,
    TaskDefinitionError,
    ValidationReport,
    WorkflowValidationError,
    raise_collected,
    should_use_colors,
)

ESC = "\033["

EXPECTED_CODES = {
    "WORKFLOW_NO_NAME": "HRS-001",
    "WORKFLOW_NO_NODES": "HRS-002",
    "WORKFLOW_INVALID_NODE_ID": "HRS-003",
    "WORKFLOW_DUPLICATE_NODE_ID": "HRS-004",
    "WORKFLOW_NO_ROOT_TASKS": "HRS-005",
    "WORKFLOW_INVALID_DEPENDENCY": "HRS-006",
    "WORKFLOW_CYCLE_DETECTED": "HRS-007",
    "WORKFLOW_INVALID_ARGS_FROM": "HRS-008",
    "WORKFLOW_INVALID_CTX_FROM": "HRS-009",
    "WORKFLOW_CTX_PARAM_MISSING": "HRS-010",
    "WORKFLOW_INVALID_OUTPUT": "HRS-011",
    "WORKFLOW_INVALID_SUCCESS_POLICY": "HRS-012",
    "WORKFLOW_INVALID_JOIN": "HRS-013",
    "WORKFLOW_UNRESOLVED_QUEUE": "HRS-014",
    "WORKFLOW_UNRESOLVED_PRIORITY": "HRS-015",
    "WORKFLOW_NO_DEFINITION_KEY": "HRS-016",
    "WORKFLOW_DUPLICATE_DEFINITION_KEY": "HRS-017",
    "WORKFLOW_SUBWORKFLOW_APP_MISSING": "HRS-018",
    "WORKFLOW_INVALID_KWARG_KEY": "HRS-019",
    "WORKFLOW_MISSING_REQUIRED_PARAMS": "HRS-020",
    "WORKFLOW_KWARGS_ARGS_FROM_OVERLAP": "HRS-021",
    "WORKFLOW_SUBWORKFLOW_PARAMS_REQUIRE_BUILD_WITH": "HRS-022",
    "WORKFLOW_SUBWORKFLOW_BUILD_WITH_BINDING": "HRS-023",
    "WORKFLOW_ARGS_FROM_TYPE_MISMATCH": "HRS-024",
    "WORKFLOW_OUTPUT_TYPE_MISMATCH": "HRS-025",
    "WORKFLOW_POSITIONAL_ARGS_NOT_SUPPORTED": "HRS-026",
    "WORKFLOW_CHECK_CASES_REQUIRED": "HRS-027",
    "WORKFLOW_CHECK_CASE_INVALID": "HRS-028",
    "WORKFLOW_CHECK_BUILDER_EXCEPTION": "HRS-029",
    "WORKFLOW_CHECK_UNDECORATED_BUILDER": "HRS-030",
    "WORKFLOW_KWARGS_NOT_SERIALIZABLE": "HRS-031",
    "TASK_NO_RETURN_TYPE": "HRS-100",
    "TASK_INVALID_RETURN_TYPE": "HRS-101",
    "TASK_INVALID_OPTIONS": "HRS-102",
    "TASK_INVALID_QUEUE": "HRS-103",
    "TASK_PREDECORATED_NOT_SUPPORTED": "HRS-104",
    "CONFIG_INVALID_QUEUE_MODE": "HRS-200",
    "CONFIG_INVALID_CLUSTER_CAP": "HRS-201",
    "CONFIG_INVALID_PREFETCH": "HRS-202",
    "BROKER_INVALID_URL": "HRS-203",
    "CONFIG_INVALID_RECOVERY": "HRS-204",
    "CONFIG_INVALID_SCHEDULE": "HRS-205",
    "CLI_INVALID_ARGS": "HRS-206",
    "WORKER_INVALID_LOCATOR": "HRS-207",
    "CONFIG_INVALID_RESILIENCE": "HRS-208",
    "CONFIG_INVALID_EXCEPTION_MAPPER": "HRS-209",
    "MODULE_EXEC_ERROR": "HRS-210",
    "BROKER_INIT_FAILED": "HRS-211",
    "CHECK_RESERVED_CODE_COLLISION": "HRS-212",
    "CONFIG_INVALID_BROKER_POOL": "HRS-213",
    "CONFIG_INVALID_CHILD_HOOK": "HRS-214",
    "TASK_NOT_REGISTERED": "HRS-300",
    "TASK_DUPLICATE_NAME": "HRS-301",
}


@pytest.fixture(autouse=True)
def _plain_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HORSIES_FORCE_COLOR", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)


# -- ErrorCode -------------------------------------------------------------------


def test_error_codes_exact() -> None:
    assert {member.name: member.value for member in ErrorCode} == EXPECTED_CODES
    for name, value in EXPECTED_CODES.items():
        assert ErrorCode[name].value == value
        assert ErrorCode(value) is ErrorCode[name]
        assert ErrorCode[name] == value


def test_excess_positional_alias() -> None:
    assert ErrorCode.WORKFLOW_EXCESS_POSITIONAL_ARGS is ErrorCode.WORKFLOW_POSITIONAL_ARGS_NOT_SUPPORTED
    assert ErrorCode.WORKFLOW_EXCESS_POSITIONAL_ARGS.value == "HRS-026"


def test_error_code_is_str_enum() -> None:
    assert isinstance(ErrorCode.TASK_INVALID_QUEUE, str)
    assert f"{ErrorCode.TASK_INVALID_QUEUE}" == "HRS-103"


def test_codes_in_documented_ranges() -> None:
    for member in ErrorCode:
        number = int(member.value.removeprefix("HRS-"))
        area = member.name.split("_")[0]
        if area == "WORKFLOW":
            assert 1 <= number <= 99
        elif number < 200:
            assert 100 <= number <= 199 and area == "TASK"
        elif number < 300:
            assert 200 <= number <= 299
        else:
            assert 300 <= number <= 399


# -- classes -----------------------------------------------------------------------


def test_hierarchy() -> None:
    for cls in (
        ConfigurationError,
        TaskDefinitionError,
        RegistryError,
        WorkflowValidationError,
        MultipleValidationErrors,
    ):
        assert issubclass(cls, HorsiesError)
    assert issubclass(HorsiesError, Exception)
    assert issubclass(NotRegistered, RegistryError) and issubclass(NotRegistered, KeyError)
    assert issubclass(DuplicateTaskNameError, RegistryError)


def test_fields_and_defaults() -> None:
    error = HorsiesError("bad thing")
    assert error.message == "bad thing"
    assert error.code is None
    assert error.notes == []
    assert error.help_text is None
    assert HorsiesError("a").notes is not HorsiesError("b").notes


def test_keyword_construction() -> None:
    location = SourceLocation("/x.py", 3)
    error = ConfigurationError(
        message="m", code=ErrorCode.BROKER_INVALID_URL, location=location, notes=["n"],
        help_text="h",
    )
    assert (error.message, error.code, error.location, error.notes, error.help_text) == (
        "m", ErrorCode.BROKER_INVALID_URL, location, ["n"], "h",
    )


def test_not_registered_defaults() -> None:
    error = NotRegistered("task 'x' is not registered")
    assert error.code is ErrorCode.TASK_NOT_REGISTERED
    with pytest.raises(KeyError):
        raise error
    with pytest.raises(RegistryError):
        raise NotRegistered("again")
    assert "error[HRS-300]: task 'x' is not registered" in str(error)


def test_duplicate_default_code() -> None:
    assert DuplicateTaskNameError("dup").code is ErrorCode.TASK_DUPLICATE_NAME


def test_explicit_code_wins_over_default() -> None:
    assert NotRegistered("x", code=ErrorCode.CLI_INVALID_ARGS).code is ErrorCode.CLI_INVALID_ARGS


def test_location_auto_filled_with_user_frame() -> None:
    error = ConfigurationError("x"); line = sys._getframe().f_lineno  # noqa: E702
    assert error.location is not None
    assert error.location.file == __file__
    assert error.location.line == line


def test_fluent_helpers_return_self() -> None:
    error = TaskDefinitionError("x")
    location = SourceLocation("/a.py", 1)
    assert error.with_note("n1") is error
    assert error.with_note("n2") is error
    assert error.with_help("h") is error
    assert error.with_location(location) is error
    assert error.notes == ["n1", "n2"] and error.help_text == "h" and error.location is location
    frame = sys._getframe()
    assert error.with_location_from_frame(frame) is error
    assert error.location == SourceLocation(__file__, frame.f_lineno - 1)


def test_pickle_roundtrip() -> None:
    error = NotRegistered("gone", notes=["n"])
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is NotRegistered
    assert (copy.message, copy.code, copy.notes) == ("gone", ErrorCode.TASK_NOT_REGISTERED, ["n"])


# -- SourceLocation -------------------------------------------------------------------


def sample_function() -> None:  # used for from_function
    pass


def test_from_function() -> None:
    location = SourceLocation.from_function(sample_function)
    assert location is not None
    assert location.file == __file__
    assert location.line == sample_function.__code__.co_firstlineno
    assert location.get_source_line() == "def sample_function() -> None:  # used for from_function"


def test_from_function_without_code() -> None:
    assert SourceLocation.from_function(len) is None
    assert SourceLocation.from_function(object()) is None


def test_format_short() -> None:
    assert SourceLocation("/a.py", 3).format_short() == "/a.py:3"
    assert SourceLocation("/a.py", 3, column=7).format_short() == "/a.py:3:7"


def test_get_source_line_missing_file() -> None:
    assert SourceLocation("/no/such/file.py", 1).get_source_line() is None


# -- rendering --------------------------------------------------------------------------


def write_source(tmp_path: Path) -> Path:
    path = tmp_path / "mailing.py"
    path.write_text(
        textwrap.dedent(
            """\
            from x import app
            """
        )
        + "\n" * 12
        + '@app.task("send_digest", queue_name="bulk_mail")\n'
        + "def send_digest(): ...\n"
    )
    return path


def test_render_spec_example(tmp_path: Path) -> None:
    path = write_source(tmp_path)
    error = TaskDefinitionError(
        "invalid queue_name 'bulk_mail'",
        code=ErrorCode.TASK_INVALID_QUEUE,
        location=SourceLocation(str(path), 14),
        notes=["valid queues: ['transactional', 'marketing']"],
        help_text="use one of the configured queue names",
    )
    source = '@app.task("send_digest", queue_name="bulk_mail")'
    expected = "\n".join(
        [
            "",
            "error[HRS-103]: invalid queue_name 'bulk_mail'",
            f"  --> {path}:14",
            "   |",
            f"14 | {source}",
            "   | " + "^" * len(source),
            "   = note: valid queues: ['transactional', 'marketing']",
            "",
            "   = help:",
            "        use one of the configured queue names",
        ]
    )
    assert error.format_rust_style(use_colors=False) == expected
    assert str(error) == expected


def test_render_without_code_or_location() -> None:
    error = HorsiesError("plain", location=SourceLocation("/no/file.py", 2))
    error.location = None
    assert str(error) == "\nerror: plain"


def test_render_location_without_readable_source() -> None:
    error = HorsiesError("m", location=SourceLocation("/no/file.py", 2))
    assert str(error) == "\nerror: m\n  --> /no/file.py:2"


def test_render_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.py"
    path.write_text("value = compute(1, 2)\n")
    error = HorsiesError("m", location=SourceLocation(str(path), 1, column=8, end_column=15))
    lines = str(error).split("\n")
    assert lines[2] == f"  --> {path}:1:8"
    assert lines[4] == "1 | value = compute(1, 2)"
    assert lines[5] == "  | " + " " * 8 + "^" * 7


def test_render_indented_line_underlines_trimmed(tmp_path: Path) -> None:
    path = tmp_path / "b.py"
    path.write_text("def f():\n    return  1  \n")
    error = HorsiesError("m", location=SourceLocation(str(path), 2))
    lines = str(error).split("\n")
    assert lines[4] == "2 |     return  1  "
    assert lines[5] == "  |     " + "^" * len("return  1")


def test_render_multiline_note_and_help() -> None:
    error = HorsiesError("m", notes=["first\nsecond"], help_text="h1\nh2")
    error.location = None
    lines = str(error).split("\n")
    assert lines[2] == "   = note: first"
    assert lines[3].startswith("  ") and lines[3].strip() == "second"
    assert lines[4:] == ["", "   = help:", "        h1", "        h2"]


def test_str_has_no_colours_even_when_forced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORSIES_FORCE_COLOR", "1")
    error = HorsiesError("m", code=ErrorCode.CLI_INVALID_ARGS)
    assert ESC not in str(error)
    assert ESC in error.format_rust_style()
    assert ESC in error.format_rust_style(use_colors=True)
    assert ESC not in error.format_rust_style(use_colors=False)


@pytest.mark.parametrize("value", ["1", "true", "yes", "TRUE", "Yes"])
def test_force_color(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HORSIES_FORCE_COLOR", value)
    monkeypatch.setenv("NO_COLOR", "1")
    assert should_use_colors() is True


def test_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "")
    monkeypatch.setattr(sys, "stderr", _Tty())
    assert should_use_colors() is False


def test_force_color_other_values_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HORSIES_FORCE_COLOR", "0")
    monkeypatch.setenv("NO_COLOR", "1")
    assert should_use_colors() is False


class _Tty:
    def __init__(self, tty: bool = True) -> None:
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@pytest.mark.parametrize("tty", [True, False])
def test_tty_decides(monkeypatch: pytest.MonkeyPatch, tty: bool) -> None:
    monkeypatch.setattr(sys, "stderr", _Tty(tty))
    assert should_use_colors() is tty


# -- collected errors ------------------------------------------------------------------------


def test_report_basics() -> None:
    report = ValidationReport("config")
    assert report.phase_name == "config"
    assert not report.has_errors() and report.errors == []
    error = ConfigurationError("a")
    report.add(error)
    assert report.has_errors() and report.errors == [error]


def test_raise_collected_none() -> None:
    assert raise_collected(ValidationReport("p")) is None


def test_raise_collected_single_raises_itself() -> None:
    report = ValidationReport("p")
    error = ConfigurationError("only", code=ErrorCode.CONFIG_INVALID_PREFETCH)
    report.add(error)
    with pytest.raises(ConfigurationError) as info:
        raise_collected(report)
    assert info.value is error


def test_raise_collected_many() -> None:
    report = ValidationReport("p")
    first = ConfigurationError("first", code=ErrorCode.CONFIG_INVALID_PREFETCH)
    second = ConfigurationError("second", code=ErrorCode.CONFIG_INVALID_CLUSTER_CAP)
    report.add(first)
    report.add(second)
    with pytest.raises(MultipleValidationErrors) as info:
        raise_collected(report)
    error = info.value
    assert error.report is report
    assert error.message == "aborting due to 2 previous errors"
    assert error.code is None and error.location is None
    assert str(error) == str(report)
    expected = "\n".join([str(first), str(second), "", "error: aborting due to 2 previous errors"])
    assert str(report) == expected
    assert str(error).endswith("\n\nerror: aborting due to 2 previous errors")


def test_raise_collected_accepts_a_list() -> None:
    errors = [ConfigurationError("a"), ConfigurationError("b"), ConfigurationError("c")]
    with pytest.raises(MultipleValidationErrors) as info:
        raise_collected(errors)
    assert info.value.message == "aborting due to 3 previous errors"
    assert info.value.errors == errors
    with pytest.raises(ConfigurationError):
        raise_collected(errors[:1])
    raise_collected([])


def test_multiple_errors_direct_construction() -> None:
    report = ValidationReport("x")
    report.add(HorsiesError("a"))
    report.add(HorsiesError("b"))
    error = MultipleValidationErrors(report=report)
    assert error.message == "aborting due to 2 previous errors"
    assert error.code is None and error.location is None


def test_report_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    report = ValidationReport("x")
    report.add(HorsiesError("a"))
    report.add(HorsiesError("b"))
    assert ESC in report.format_rust_style(use_colors=True)
    assert ESC not in str(report)


def test_from_function_follows_wrapped_and_methods() -> None:
    class Wrapper:
        __wrapped__ = staticmethod(sample_function)

    class Holder:
        def method(self) -> None:
            pass

    location = SourceLocation.from_function(Wrapper())
    assert location is not None and location.line == sample_function.__code__.co_firstlineno
    method_location = SourceLocation.from_function(Holder().method)
    assert method_location is not None
    assert method_location.line == Holder.method.__code__.co_firstlineno
