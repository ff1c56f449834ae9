"""The kwargs layout of a workflow task row, both directions (workflows.md §5.5).

The engine stores a node's task kwargs as one JSON object: the static kwargs
(codec text, spliced in unchanged), then one envelope per `args_from`
parameter, then the context envelope (only with `workflow_ctx_from`), then the
meta envelope (always). The worker takes the envelopes out again before the
codec decodes the static kwargs, because the codec refuses every key that
starts with ``__horsies``.

```python
text = node_kwargs_json(
    '{"width":640}',
    {"stored": taskresult_arg(stored_result_text)},
    None,
    meta_envelope("0190…", 1, "render_preview"),
)
# '{"width":640,"stored":{"__horsies_taskresult__":true,"data":"…"},
#   "__horsies_workflow_meta__":{"workflow_id":"0190…","task_index":1,…}}'
```

Stored results and summaries travel as text inside the envelopes, exactly as
their columns hold them: the engine never decodes them, and the worker decodes
each one on its own, so one corrupt result spoils only its own input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import orjson

from horsies._speedups._api import RESERVED_PREFIX
from horsies.codec import dumps_json
from horsies.task_result import TaskError, TaskResult
from horsies.workflows.context import (
    WorkflowContext,
    WorkflowMeta,
    decode_stored_result,
    undecodable_result,
    upstream_skipped,
)

__all__ = [
    "CTX_KEY",
    "CTX_PARAM",
    "MARKER",
    "META_KEY",
    "META_PARAM",
    "TASKRESULT_KEY",
    "Injections",
    "KwargsConflictError",
    "WireFormatError",
    "ctx_envelope",
    "meta_envelope",
    "node_kwargs_json",
    "skipped_result_json",
    "split_injections",
    "taskresult_arg",
]

TASKRESULT_KEY: Final = "__horsies_taskresult__"
CTX_KEY: Final = "__horsies_workflow_ctx__"
META_KEY: Final = "__horsies_workflow_meta__"
CTX_PARAM: Final = "workflow_ctx"
META_PARAM: Final = "workflow_meta"
MARKER: Final = '"__horsies'
"""In the kwargs text of every workflow row (the meta key at least); a text
without it cannot hold an envelope, so the worker skips the split for it."""

_RESERVED_PARAMS: Final = (CTX_PARAM, META_PARAM)
_CTX_FIELDS: Final = ("workflow_id", "task_index", "task_name")


class WireFormatError(ValueError):
    """An envelope in a stored kwargs text does not have the layout of §5.5."""


class KwargsConflictError(ValueError):
    """An injected parameter is also a static kwarg, or uses a reserved name."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"parameter {name!r} {reason}")
        self.name = name


# --- engine side: building the stored kwargs text ---------------------------------------


def taskresult_arg(result_json: str) -> dict[str, Any]:
    """The envelope of one `args_from` input: the stored result text, untouched."""
    return {TASKRESULT_KEY: True, "data": result_json}


def skipped_result_json(dependency_index: int) -> str:
    """Stored text of the UPSTREAM_SKIPPED sentinel, for a SKIPPED dependency (§6.4)."""
    return dumps_json(upstream_skipped(dependency_index)).unwrap()


def ctx_envelope(
    workflow_id: str,
    task_index: int,
    task_name: str,
    results_by_id: Mapping[str, str],
    summaries_by_id: Mapping[str, str] | None,
) -> dict[str, Any]:
    """The context envelope: node id -> stored result text (and summary text)."""
    return {
        "workflow_id": workflow_id,
        "task_index": task_index,
        "task_name": task_name,
        "results_by_id": dict(results_by_id),
        "summaries_by_id": dict(summaries_by_id or {}),
    }


def meta_envelope(workflow_id: str, task_index: int, task_name: str) -> dict[str, Any]:
    """The meta envelope, present on every workflow task row."""
    return {"workflow_id": workflow_id, "task_index": task_index, "task_name": task_name}


def node_kwargs_json(
    static_kwargs_json: str | None,
    injected: Mapping[str, dict[str, Any]],
    ctx: dict[str, Any] | None,
    meta: dict[str, Any],
) -> str:
    """The task kwargs text of a node: the static kwargs text with the envelopes
    appended. The static part is not decoded or re-encoded.

    Raises KwargsConflictError when an injected name is reserved or repeats a
    static kwarg, ValueError when the static text is not a JSON object.
    """
    body = _object_body(static_kwargs_json)
    _check_injected_names(body, injected)
    extra: dict[str, Any] = dict(injected)
    if ctx is not None:
        extra[CTX_KEY] = ctx
    extra[META_KEY] = meta
    tail = orjson.dumps(extra).decode()[1:]  # '"k":v,...}' : the object without its '{'
    return "{" + body + ("," if body else "") + tail


def _object_body(static_kwargs_json: str | None) -> str:
    """What lies between the braces of the static kwargs object text."""
    text = (static_kwargs_json or "{}").strip()
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        raise ValueError("static kwargs must be the JSON text of an object")
    return text[1:-1].strip()


def _check_injected_names(body: str, injected: Mapping[str, Any]) -> None:
    for name in injected:
        if name in _RESERVED_PARAMS or name.startswith(RESERVED_PREFIX):
            raise KwargsConflictError(name, "is reserved for values the engine injects")
    candidates = [*injected, *_RESERVED_PARAMS]
    # Parameter names need no escaping in JSON, so a name absent from the text
    # is certainly not a key; parse only when one might be.
    if not any(f'"{name}"' in body for name in candidates):
        return
    static_keys = orjson.loads("{" + body + "}").keys()
    for name in candidates:
        if name in static_keys:
            reason = ("is filled by the engine and cannot be a static kwarg"
                      if name in _RESERVED_PARAMS else "is both a static kwarg and args_from")
            raise KwargsConflictError(name, reason)


# --- worker side: taking the envelopes out -------------------------------------------


class Injections(NamedTuple):
    """What a workflow row injects besides its static kwargs."""

    results: dict[str, TaskResult[Any, TaskError]]
    """Parameter name -> decoded `args_from` input."""
    ctx: WorkflowContext | None
    meta: WorkflowMeta | None


def split_injections(parsed_kwargs: dict[str, Any]) -> Injections:
    """Remove the envelopes from parsed kwargs (in place) and decode them.

    What stays in `parsed_kwargs` is the static kwargs tree, for the codec.
    A stored result that cannot be decoded becomes a
    RESULT_DESERIALIZATION_ERROR result (§5.2); an envelope without the §5.5
    layout, or any other top-level ``__horsies`` key, raises WireFormatError.
    """
    ctx_raw = parsed_kwargs.pop(CTX_KEY, None)
    meta_raw = parsed_kwargs.pop(META_KEY, None)
    results: dict[str, TaskResult[Any, TaskError]] = {}
    for name in list(parsed_kwargs):
        value = parsed_kwargs[name]
        if type(value) is dict and TASKRESULT_KEY in value:
            results[name] = _decode_taskresult_arg(name, parsed_kwargs.pop(name))
        elif name.startswith(RESERVED_PREFIX):
            # The codec refuses these keys only when encoding; left here, one
            # would reach the task function as an unexpected keyword.
            raise WireFormatError(f"unknown reserved key {name!r}")
    ctx = None if ctx_raw is None else _decode_ctx(ctx_raw)
    meta = None if meta_raw is None else WorkflowMeta(*_location(meta_raw, META_KEY))
    return Injections(results, ctx, meta)


def _decode_taskresult_arg(name: str, envelope: dict[str, Any]) -> TaskResult[Any, TaskError]:
    if envelope[TASKRESULT_KEY] is not True or set(envelope) != {TASKRESULT_KEY, "data"}:
        raise WireFormatError(
            f"kwargs[{name!r}]: expected exactly {{{TASKRESULT_KEY!r}: true, 'data': <text>}}"
        )
    data = envelope["data"]
    if type(data) is not str:
        # The envelope is intact; only its payload is unusable, which is the
        # receiving task's business, like any undecodable result (§5.2).
        problem = f"expected the stored result text, got {type(data).__name__}"
        return undecodable_result(name, problem)
    return decode_stored_result(data, name)


def _location(raw: Any, key: str) -> tuple[str, int, str]:
    """(workflow_id, task_index, task_name) of a context or meta envelope."""
    if type(raw) is not dict:
        raise WireFormatError(f"{key}: expected an object")
    workflow_id, task_index, task_name = (raw.get(field) for field in _CTX_FIELDS)
    if (type(workflow_id) is not str or type(task_index) is not int
            or type(task_name) is not str):
        raise WireFormatError(
            f"{key}: expected 'workflow_id' (string), 'task_index' (integer) "
            "and 'task_name' (string)"
        )
    return workflow_id, task_index, task_name


def _decode_ctx(raw: Any) -> WorkflowContext:
    workflow_id, task_index, task_name = _location(raw, CTX_KEY)
    results = _text_map(raw.get("results_by_id"), "results_by_id")
    summaries = _text_map(raw.get("summaries_by_id"), "summaries_by_id")
    try:
        return WorkflowContext.from_serialized(workflow_id, task_index, task_name,
                                               results, summaries)
    except ValueError as exc:  # a summary text that is not JSON at all
        raise WireFormatError(f"{CTX_KEY}: {exc}") from exc


def _text_map(raw: Any, field: str) -> dict[str, str]:
    if raw is None:
        return {}
    if type(raw) is not dict or any(type(v) is not str for v in raw.values()):
        raise WireFormatError(f"{CTX_KEY}.{field}: expected an object of stored texts")
    return raw
