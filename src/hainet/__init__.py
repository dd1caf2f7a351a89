"""hainet: test, compare and select LLMs on your own hardware.

The names users need are re-exported here; everything else is an implementation
detail that may move.
"""

import sys
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import TYPE_CHECKING

from hainet._lazy import lazy_exports

if TYPE_CHECKING:
    from hainet.agents import (
        AgentRunner,
        AgentSpec,
        CreateConfig,
        EvolveConfig,
        Evolver,
        Marketplace,
        create_and_store,
        cross_agents,
        evolve_agent,
        load_spec,
        open_runner,
        resolve_agent,
        test_agent,
    )
    from hainet.backends import Backend, Catalog, open_backend, register_backend
    from hainet.bench import BenchOptions, run_bench
    from hainet.config import Settings, load_settings
    from hainet.errors import (
        BackendError,
        BackendUnavailable,
        ConfigError,
        HainetError,
        ModelNotFound,
        SandboxError,
        StoreError,
        SuiteError,
        ValidationError,
    )
    from hainet.hyper import Controls, HyperConfig, HyperLoop, Policy, run_hyper
    from hainet.sandbox import Sandbox, SandboxResult
    from hainet.select import select
    from hainet.store import CaseResult, Run, Store
    from hainet.types import (
        Completion,
        GenerationParams,
        Message,
        ModelSpec,
        Request,
        RunConfig,
        Timing,
    )

# Imported on first use: `import hainet` (and so every `hainet` command) stays cheap,
# and a command imports only the rooms it uses.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "AgentRunner": "hainet.agents",
        "AgentSpec": "hainet.agents",
        "CreateConfig": "hainet.agents",
        "EvolveConfig": "hainet.agents",
        "Evolver": "hainet.agents",
        "Marketplace": "hainet.agents",
        "create_and_store": "hainet.agents",
        "cross_agents": "hainet.agents",
        "evolve_agent": "hainet.agents",
        "load_spec": "hainet.agents",
        "open_runner": "hainet.agents",
        "resolve_agent": "hainet.agents",
        "test_agent": "hainet.agents",
        "Backend": "hainet.backends",
        "Catalog": "hainet.backends",
        "open_backend": "hainet.backends",
        "register_backend": "hainet.backends",
        "BenchOptions": "hainet.bench",
        "run_bench": "hainet.bench",
        "Settings": "hainet.config",
        "load_settings": "hainet.config",
        "BackendError": "hainet.errors",
        "BackendUnavailable": "hainet.errors",
        "ConfigError": "hainet.errors",
        "HainetError": "hainet.errors",
        "ModelNotFound": "hainet.errors",
        "SandboxError": "hainet.errors",
        "StoreError": "hainet.errors",
        "SuiteError": "hainet.errors",
        "ValidationError": "hainet.errors",
        "Controls": "hainet.hyper",
        "HyperConfig": "hainet.hyper",
        "HyperLoop": "hainet.hyper",
        "Policy": "hainet.hyper",
        "run_hyper": "hainet.hyper",
        "Sandbox": "hainet.sandbox",
        "SandboxResult": "hainet.sandbox",
        "select": "hainet.select",
        "CaseResult": "hainet.store",
        "Run": "hainet.store",
        "Store": "hainet.store",
        "Completion": "hainet.types",
        "GenerationParams": "hainet.types",
        "Message": "hainet.types",
        "ModelSpec": "hainet.types",
        "Request": "hainet.types",
        "RunConfig": "hainet.types",
        "Timing": "hainet.types",
    },
)


class _Package(ModuleType):
    # `hainet.select` is the selector function, as it always was. Importing the
    # subpackage `hainet.select` would bind the subpackage here and hide the function.
    def __setattr__(self, name: str, value: object) -> None:
        if name == "select" and isinstance(value, ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

try:
    __version__ = version("hainet")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AgentRunner",
    "AgentSpec",
    "Backend",
    "BackendError",
    "BackendUnavailable",
    "BenchOptions",
    "CaseResult",
    "Catalog",
    "Completion",
    "ConfigError",
    "CreateConfig",
    "Controls",
    "EvolveConfig",
    "Evolver",
    "GenerationParams",
    "HainetError",
    "HyperConfig",
    "HyperLoop",
    "Marketplace",
    "Message",
    "ModelNotFound",
    "ModelSpec",
    "Policy",
    "Request",
    "Run",
    "RunConfig",
    "Sandbox",
    "SandboxError",
    "SandboxResult",
    "Settings",
    "Store",
    "StoreError",
    "SuiteError",
    "Timing",
    "ValidationError",
    "__version__",
    "create_and_store",
    "cross_agents",
    "evolve_agent",
    "load_settings",
    "load_spec",
    "open_runner",
    "open_backend",
    "register_backend",
    "resolve_agent",
    "run_bench",
    "run_hyper",
    "select",
    "test_agent",
]
