"""Locating an app from a locator (cli.md section 3): ``module:attr``, a module
whose Horsies instance is discovered, or a file path.

Shared by the commands and by worker children, which must not pay for the
command-line machinery (typer, rich) to find the app again.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from horsies.logging import get_logger

if TYPE_CHECKING:
    from horsies.app import Horsies
    from horsies.errors import HorsiesError

__all__ = [
    "LOCATOR_FORMS",
    "LocatedApp",
    "debug_imports_enabled",
    "dotted_name_for",
    "import_module_file",
    "is_file_locator",
    "load_app",
    "locate_app",
    "split_locator",
]

LOCATOR_FORMS = (
    "  horsies <command> shop.workers.instance:app      (module and attribute, recommended)\n"
    "  horsies <command> shop.workers.instance          (module, attribute discovered)\n"
    "  horsies <command> shop/workers/instance.py:app   (file and attribute)\n"
    "  horsies <command> shop/workers/instance.py       (file, attribute discovered)"
)


def _log() -> logging.Logger:
    return get_logger("cli")


def debug_imports_enabled() -> bool:
    return os.environ.get("HORSIES_DEBUG_IMPORTS", "").strip().lower() in {"1", "true", "yes"}



@dataclass(frozen=True, slots=True)
class LocatedApp:
    """An imported app and how worker children find it again."""

    app: Horsies
    attr: str
    module_name: str  # shown in logs: the dotted name, or the file's real path
    child_locator: str  # `module:attr`, or `/abs/real/path.py:attr`
    sys_path_roots: tuple[str, ...]
    is_file: bool


def is_file_locator(module_part: str) -> bool:
    """A module part is a file path when it ends in ``.py`` or holds a path separator."""
    seps = {os.sep, "/"} | ({os.altsep} if os.altsep else set())
    return module_part.endswith(".py") or any(sep in module_part for sep in seps)


def split_locator(locator: str) -> tuple[str, str | None]:
    """``(module part, attribute or None)``, split at the last ``:``.

    A colon whose right side looks like a path (a Windows drive letter such as
    ``C:\\app.py``) is not an attribute separator.
    """
    module_part, sep, attr = locator.rpartition(":")
    if not sep or is_file_locator(attr):
        return locator, None
    return module_part, attr


def _invalid_locator(locator: str, why: str) -> HorsiesError:
    from horsies.errors import ConfigurationError, ErrorCode

    return ConfigurationError(
        f"invalid app locator: '{locator}'",
        code=ErrorCode.WORKER_INVALID_LOCATOR,
        notes=[why],
        help_text=f"use one of these forms:\n{LOCATOR_FORMS.replace('<command>', 'worker')}",
    ).with_location(None)


def _put_first_on_sys_path(path: str) -> None:
    while path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def _project_root() -> str | None:
    """The current directory, put first on ``sys.path``.

    A project root (it holds ``pyproject.toml``) is logged. A plain directory
    is an import root too, so that ``horsies worker instance:app`` finds
    ``instance.py`` next to it, as ``python -m`` would.
    """
    cwd = os.getcwd()
    _put_first_on_sys_path(cwd)
    if os.path.isfile(os.path.join(cwd, "pyproject.toml")):
        _log().info("Added project root to sys.path: %s", cwd)
    return cwd


def _import_file_module(module_part: str, locator: str, attr: str | None) -> tuple[Any, str]:
    """Import a file locator; returns the module and its real path."""
    from horsies.errors import ConfigurationError, ErrorCode

    given = module_part if module_part.endswith(".py") else f"{module_part}.py"
    path = os.path.realpath(given)
    if not os.path.isfile(path):
        stem = given[: -len(".py")]
        if "." in stem and not any(sep in stem for sep in ("/", os.sep)):
            hint = attr or "<app_name>"
            help_text = (
                f"use the dotted module path: {stem}:{hint}\n"
                f"or the file path:           {stem.replace('.', '/')}.py:{hint}"
            )
            if attr is None:
                help_text += "\nwhere <app_name> is the variable holding your Horsies instance"
            raise ConfigurationError(
                f"ambiguous module locator: '{locator}'",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=[f"'{given}' mixes dotted module notation with a .py file extension"],
                help_text=help_text,
            ).with_location(None)
        raise ConfigurationError(
            f"module file not found: {path}",
            code=ErrorCode.CLI_INVALID_ARGS,
            notes=[f"given: '{module_part}'"],
            help_text="check that the file path is correct and the file exists",
        ).with_location(None)
    module = _guarded_import(lambda: import_module_file(path), path, missing_name=None)
    return module, path


def dotted_name_for(path: str) -> str | None:
    """The dotted name under which the file ``path`` is importable from ``sys.path``.

    Walks up through package directories (those holding ``__init__.py``) and
    returns a name only when the directory above the outermost package is on
    ``sys.path`` and that name really resolves to this file.
    """
    directory, filename = os.path.split(path)
    stem = filename[: -len(".py")] if filename.endswith(".py") else ""
    if not stem.isidentifier():
        return None
    parts = [] if stem == "__init__" else [stem]
    while os.path.isfile(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        if not package.isidentifier():
            return None
        parts.insert(0, package)
    roots = {os.path.realpath(entry or os.curdir) for entry in sys.path if isinstance(entry, str)}
    if not parts or directory not in roots:
        return None
    name = ".".join(parts)
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    origin = getattr(spec, "origin", None)
    return name if origin and os.path.realpath(origin) == path else None


def import_module_file(path: str) -> Any:
    """Import the file ``path`` (a real path) once per process.

    When the file is reachable as a dotted module from ``sys.path`` (say
    ``shop/instance.py`` under the project root), it is imported under that
    name, so that task modules doing ``from shop.instance import app`` get the
    same app object; otherwise under the synthetic name task discovery uses.
    Either way its directory goes to the front of ``sys.path``.
    """
    from horsies.app import import_file

    dotted = dotted_name_for(path)
    directory = os.path.dirname(path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    if dotted is not None:
        return importlib.import_module(dotted)
    return import_file(path)


def _guarded_import(do_import: Any, name: str, missing_name: str | None) -> Any:
    """Run an import and map its failures to HRS-206 / HRS-210 (HorsiesError passes)."""
    from horsies.errors import ConfigurationError, ErrorCode, HorsiesError

    try:
        return do_import()
    except HorsiesError:
        raise
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing_name is not None and (
            missing == missing_name or missing_name.startswith(f"{missing}.")
        ):
            raise ConfigurationError(
                f"module not found: {missing_name}",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=[str(exc), f"sys.path starts with: {sys.path[:5]}"],
                help_text="run from the project root, or add it to PYTHONPATH",
            ).with_location(None) from exc
        raise _failed_import(name, exc) from exc
    except ImportError as exc:
        raise _failed_import(name, exc) from exc
    except Exception as exc:
        raise ConfigurationError(
            f"error while importing module: {name}",
            code=ErrorCode.MODULE_EXEC_ERROR,
            notes=[f"{type(exc).__name__}: {exc}"],
            help_text="the module was found but raised while it was imported; "
            "check its module-level code",
        ).with_location(None) from exc


def _failed_import(name: str, exc: ImportError) -> HorsiesError:
    from horsies.errors import ConfigurationError, ErrorCode

    return ConfigurationError(
        f"failed to import module: {name}",
        code=ErrorCode.CLI_INVALID_ARGS,
        notes=[str(exc)],
        help_text="check that the module and its dependencies are importable",
    ).with_location(None)


def _public_names(module: Any) -> list[str]:
    return [name for name in dir(module) if not name.startswith("_")]


def _pick_app(module: Any, module_name: str, attr: str | None) -> tuple[Horsies, str]:
    from horsies.app import Horsies
    from horsies.errors import ConfigurationError, ErrorCode

    if attr is not None:
        if not hasattr(module, attr):
            raise ConfigurationError(
                f"module '{module_name}' has no attribute '{attr}'",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=[f"public attributes: {_public_names(module)}"],
                help_text="check the name after the ':' in the module locator",
            ).with_location(None)
        obj = getattr(module, attr)
        if not isinstance(obj, Horsies):
            raise ConfigurationError(
                f"'{attr}' in module '{module_name}' is not a Horsies instance",
                code=ErrorCode.CLI_INVALID_ARGS,
                notes=[f"got {type(obj).__name__}"],
                help_text="point the locator at a Horsies(...) instance",
            ).with_location(None)
        return obj, attr
    found = [
        (name, obj)
        for name in _public_names(module)
        if isinstance(obj := getattr(module, name, None), Horsies)
    ]
    if not found:
        raise ConfigurationError(
            f"no Horsies instance found in {module_name}",
            code=ErrorCode.CLI_INVALID_ARGS,
            notes=[f"scanned the public attributes of '{module_name}'"],
            help_text="name the attribute: module.path:attribute",
        ).with_location(None)
    if len(found) > 1:
        raise ConfigurationError(
            f"multiple Horsies instances found in {module_name}",
            code=ErrorCode.CLI_INVALID_ARGS,
            notes=[f"found: {[name for name, _ in found]}"],
            help_text="name the one to use: module.path:attribute",
        ).with_location(None)
    name, app = found[0]
    return app, name


def locate_app(locator: str, *, use_project_root: bool = True) -> LocatedApp:
    """Import the app named by ``locator`` (cli.md section 3).

    Raises ``ConfigurationError`` (HRS-206, HRS-207, HRS-210) or the
    ``HorsiesError`` the module raised while being imported.
    """
    from horsies.app import sends_suppressed

    # A send at the module's top level must not enqueue (tasks.md section 11).
    with sends_suppressed():
        return _locate_app(locator, use_project_root)


def _locate_app(locator: str, use_project_root: bool) -> LocatedApp:
    roots: list[str] = []
    project_root = _project_root() if use_project_root else None
    if project_root is not None:
        roots.append(project_root)
    module_part, attr = split_locator(locator.strip())
    if not module_part:
        raise _invalid_locator(locator, "the module part before ':' is empty")
    if attr is not None and not all(part.isidentifier() for part in attr.split(".")):
        raise _invalid_locator(locator, f"'{attr}' is not a Python attribute name")
    if is_file_locator(module_part):
        module, path = _import_file_module(module_part, locator, attr)
        roots.append(os.path.dirname(path))
        module_name, is_file = path, True
    else:
        module = _guarded_import(
            lambda: importlib.import_module(module_part), module_part, missing_name=module_part
        )
        module_name, is_file = module_part, False
    app, found_attr = _pick_app(module, module_name, attr)
    # Said once by the command; a worker's children find the same app quietly.
    level = logging.DEBUG if os.environ.get("HORSIES_CHILD_PROCESS") == "1" else logging.INFO
    _log().log(level, "Discovered horsies '%s' from %s", found_attr, module_name)
    if debug_imports_enabled():
        _log().debug("Import roots: %s", roots)
        _log().debug("Imported app module: %s", module_name)
    unique_roots = tuple(dict.fromkeys(roots))
    return LocatedApp(
        app=app,
        attr=found_attr,
        module_name=module_name,
        child_locator=f"{module_name}:{found_attr}",
        sys_path_roots=unique_roots,
        is_file=is_file,
    )


def load_app(locator: str, sys_path_roots: Iterable[str] = ()) -> Horsies:
    """Import an app from a child locator (``module:attr`` or ``/abs/path.py:attr``).

    For worker children: the roots go to the front of ``sys.path`` first, in
    the order given; no ``pyproject.toml`` lookup is made.
    """
    for root in reversed(list(sys_path_roots)):
        if root:
            _put_first_on_sys_path(root)
    return locate_app(locator, use_project_root=False).app
