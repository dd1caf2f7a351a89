"""The one door for untrusted input: files and values from a user, a plugin or a hub.

Every reader of such data (suites, agent specs, data files, config.toml, the
selector's files, ``hainet report --results``) goes through here, so that each one
refuses the same things, with the same kind of message, *before* a parser or a
pydantic model can be made to crash or to eat the machine:

* **size**: the file's size (``stat``) and then the bytes actually read are checked
  against ``max_bytes`` before anything is decoded, so ``/dev/zero`` or a file that
  grows while it is read is refused too;
* **depth**: a linear pre-scan counts bracket nesting outside strings before
  ``json.loads`` (CPython's decoder recurses and raises ``RecursionError`` near
  100,000 levels); YAML's composer counts as it goes;
* **numbers**: NaN, Infinity and numbers that overflow to them (``1e999``) are
  refused, and so are integers longer than ``max_int_digits`` (CPython refuses to
  convert more than 4,300 digits with a ``ValueError`` of its own);
* **keys**: a key given twice in one object is refused (JSON and YAML would keep the
  last one silently); YAML keys must be strings, as JSON's are;
* **YAML**: aliases are refused (no "billion laughs"), and so are the tags that do not
  map to JSON (``!!binary``, ``!!set``, ``!!omap``, ``!!pairs``, ``!!timestamp``:
  an unquoted date stays a string);
* **TOML**: ``nan`` and ``inf`` are refused like JSON's.

Values built in Python (a suite from a plugin, a spec from a hub) are checked by
:func:`value_problem`, the same walk the file readers finish with: JSON types only,
finite numbers, string keys, bounded depth and, if asked, bounded string length.

Errors are raised as the caller's domain error (``error=SuiteError`` for suites,
``ValidationError`` for specs and data files, ``ConfigError`` for settings) and name
the file (``where``), then the line where the parser gives one (syntax errors, every
YAML problem), else the path of the value (``cases.3.target``), which the caller may
render better with ``locate`` (a suite names the case id).

Layer 1: imports nothing of hainet but :mod:`hainet.errors`.  The limits and the value
walk live in ``_limits``, the JSON, YAML and TOML readers in ``_parsers``.
"""

from hainet.inputs._limits import (
    CONFIG_LIMITS,
    DATA_LIMITS,
    DEFAULT_LIMITS,
    RESULTS_LIMITS,
    SPEC_LIMITS,
    SUITE_LIMITS,
    Limits,
    Problem,
    check_value,
    format_path,
    read_bytes,
    read_text,
    value_problem,
)
from hainet.inputs._limits import Locate as Locate  # the type of locate=, not in __all__
from hainet.inputs._parsers import (
    Line,
    load_file,
    parse_json,
    parse_json_lines,
    parse_toml,
    parse_yaml,
)

__all__ = [
    "CONFIG_LIMITS",
    "DATA_LIMITS",
    "DEFAULT_LIMITS",
    "RESULTS_LIMITS",
    "SPEC_LIMITS",
    "SUITE_LIMITS",
    "Limits",
    "Line",
    "Problem",
    "check_value",
    "format_path",
    "load_file",
    "parse_json",
    "parse_json_lines",
    "parse_toml",
    "parse_yaml",
    "read_bytes",
    "read_text",
    "value_problem",
]
