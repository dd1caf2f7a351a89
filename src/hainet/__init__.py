"""hainet: test, compare and select LLMs on your own hardware.

The names users need are re-exported here; everything else is an implementation
detail that may move.
"""

from importlib.metadata import PackageNotFoundError, version

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
