"""Finding suites: built-in data files, users' files, and plugins.

Looked up by name, first match wins:

1. a path to a ``.json`` file;
2. ``HAINET_HOME/suites/NAME.json`` (users' own, may shadow a built-in);
3. the entry-point group ``hainet.suites``: the entry point may load a :class:`Suite`,
   a dict, a path to a JSON file, or a callable returning one of these;
4. the built-in data files in ``hainet/suites/data/``.

``all`` stands for the eight capability suites.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from hainet.errors import SuiteError
from hainet.inputs import SUITE_LIMITS, check_value, format_path, load_file
from hainet.registry import Registry
from hainet.suites.base import Suite

__all__ = ["CAPABILITIES", "expand_suite_names", "load_suite", "parse_suite", "suite_names"]

# What a plugin gives is converted on load (_from_entry_point): the registry keeps it
# as it came (a Suite, a dict, a path or a callable of one).
SUITES: Registry[object] = Registry(
    "suite", check=lambda name, obj: obj, error=lambda msg, hint: SuiteError(msg, hint=hint)
)
ENTRY_POINT_GROUP = SUITES.group
CAPABILITIES = (
    "reasoning",
    "creativity",
    "coding",
    "conversation",
    "instruction_following",
    "factual_accuracy",
    "structured_output",
    "tool_use",
)

_BUILTIN = files("hainet.suites").joinpath("data")


def _user_dir(home: Path | None) -> Path | None:
    return home / "suites" if home else None


def suite_names(home: Path | None = None) -> list[str]:
    names = {p.name[:-5] for p in _BUILTIN.iterdir() if p.name.endswith(".json")}
    names |= set(SUITES.names())
    user = _user_dir(home)
    if user and user.is_dir():
        names |= {p.stem for p in user.glob("*.json")}
    return sorted(names)


def expand_suite_names(names: list[str] | tuple[str, ...]) -> list[str]:
    """``all`` becomes the eight capability suites; order kept, duplicates dropped."""
    out: list[str] = []
    for name in names:
        for item in CAPABILITIES if name == "all" else (name,):
            if item not in out:
                out.append(item)
    return out


def _locate(data: Any, loc: tuple[str | int, ...]) -> str:
    """Where ``loc`` points in suite data: ``case 'x' (#2): field 'target'``."""
    place = ""
    if len(loc) >= 2 and loc[0] == "cases" and isinstance(loc[1], int):
        cases = data.get("cases") if isinstance(data, dict) else None
        case = cases[loc[1]] if isinstance(cases, list) and loc[1] < len(cases) else None
        case_id = case.get("id") if isinstance(case, dict) else None
        if isinstance(case_id, str) and 0 < len(case_id) <= 200:
            place = f"case {case_id!r} (#{loc[1] + 1})"
        else:
            place = f"case #{loc[1] + 1}"
        loc = loc[2:]
    field = format_path(loc)
    return ": ".join(p for p in (place, f"field {field!r}" if field else "") if p)


def parse_suite(data: Any, where: str) -> Suite:
    """Validate suite data; errors name the file, the case and the field.

    Data from a plugin is held to what a suite file is (:mod:`hainet.inputs`: finite
    numbers, JSON values, bounded depth) before its model sees it.
    """
    if isinstance(data, Suite):
        return data
    check_value(data, where=where, error=SuiteError, limits=SUITE_LIMITS, locate=_locate)
    try:
        return Suite.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        place = _locate(data, tuple(first["loc"]))
        msg = first["msg"].removeprefix("Value error, ")
        raise SuiteError(": ".join(p for p in (where, place, msg) if p)) from None


def _from_file(path: Path | Any, where: str) -> Suite:
    """A suite file (a path or a packaged data file), bounded before it is parsed."""
    data = load_file(path, where=where, error=SuiteError, limits=SUITE_LIMITS, locate=_locate)
    return parse_suite(data, where)


def _from_entry_point(name: str) -> Suite | None:
    """A suite registered in process or by a plugin's entry point, else None."""
    if name not in SUITES:
        return None
    ep = SUITES.entry_point(name)
    where = f"suite plugin {name!r} ({ep.value if ep is not None else 'registered'})"
    obj: Any = SUITES.get(name)  # a failed import is a SuiteError naming the plugin
    try:
        if callable(obj) and not isinstance(obj, type):
            obj = obj()
    except Exception as exc:  # a broken plugin must not look like a missing suite
        raise SuiteError(f"{where} failed to load: {exc}") from None
    if isinstance(obj, (str, Path)):
        path = Path(obj)
        return _from_file(path, f"{where}: {path}")
    return parse_suite(obj, where)


def load_suite(name: str, home: Path | None = None) -> Suite:
    """Load a suite by name or JSON path (see the module docstring for the order)."""
    if name.endswith(".json"):
        path = Path(name).expanduser()
        if not path.is_file():
            raise SuiteError(f"suite file not found: {path}")
        return _from_file(path, str(path))
    user = _user_dir(home)
    if user and (user / f"{name}.json").is_file():
        path = user / f"{name}.json"
        return _from_file(path, str(path))
    plugin = _from_entry_point(name)
    if plugin is not None:
        return plugin
    builtin = _BUILTIN.joinpath(f"{name}.json")
    if builtin.is_file():
        return _from_file(builtin, f"built-in suite {name!r}")
    raise SuiteError(
        f"unknown suite {name!r}", hint=f"known suites: all, {', '.join(suite_names(home))}"
    )
