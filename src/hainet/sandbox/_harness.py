"""Runs inside the sandbox for ``Sandbox.call``: load the code, call its function on
each case, and write what came back, as plain JSON, to a pipe of its own.

Standalone on purpose: it runs under the sandbox's interpreter with ``-S``, so only
the standard library is available.  Nothing here is trusted by the host: the code
runs in this very process and could rewrite any of it.  That is fine, because all
this program reports are *return values*; anything the code forges in their place
is just another answer, and the answers are compared with the expected values
outside the sandbox, where the code never sees them.  See the package docstring.

Usage: ``python -E -s -S -B _harness.py MODULE_FILE FUNCTION CASES_FILE REPORT_FD``
"""

import importlib.util
import json
import os
import sys

_MAX_DEPTH = 100
_MAX_ERROR = 2000


def _plain(value: object, depth: int = 0) -> object:
    """The value as JSON data, refusing anything that is not exactly plain data.

    ``type(x) is`` and not ``isinstance``: a subclass of ``int`` or ``str`` may
    override ``__eq__`` or ``__str__``; only what survives as plain data leaves.
    """
    if depth > _MAX_DEPTH:
        raise ValueError("nested too deeply")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if isinstance(value, (list, tuple)) and kind in (list, tuple):
        return [_plain(item, depth + 1) for item in value]
    if isinstance(value, dict) and kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise TypeError(f"dict key of type {type(key).__name__}, not str")
            out[key] = _plain(item, depth + 1)
        return out
    raise TypeError(f"returned a {kind.__name__}, which is not plain JSON data")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]


def main() -> int:
    module_file, function, cases_file, report_fd = sys.argv[1:5]
    report = os.fdopen(int(report_fd), "w", encoding="utf-8")

    def emit(record: dict[str, object]) -> None:
        report.write(json.dumps(record) + "\n")
        report.flush()

    with open(cases_file, encoding="utf-8") as fh:
        # Kept as text so that each call gets fresh arguments: a function that
        # mutates its input cannot change the next case.
        cases = [json.dumps(case) for case in json.load(fh)]
    os.unlink(cases_file)
    sys.path.insert(0, os.path.dirname(os.path.abspath(module_file)))
    try:
        spec = importlib.util.spec_from_file_location("solution", module_file)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {module_file}")
        module = importlib.util.module_from_spec(spec)
        sys.modules["solution"] = module
        spec.loader.exec_module(module)
        func = getattr(module, function)
        if not callable(func):
            raise TypeError(f"{function} is not callable")
    except BaseException as exc:  # noqa: BLE001 - a SystemExit at import is a load error too
        emit({"load_error": _describe(exc)})
        return 1
    for index, case in enumerate(cases):
        try:
            value = _plain(func(*json.loads(case)))
        except BaseException as exc:  # noqa: BLE001 - sys.exit() inside the call is its error
            emit({"i": index, "error": _describe(exc)})
        else:
            emit({"i": index, "value": value})
    return 0


if __name__ == "__main__":
    sys.exit(main())
