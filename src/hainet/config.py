"""Settings: flags first, then ``HAINET_*`` environment variables, then
``HAINET_HOME/config.toml``, then defaults.

``HAINET_HOME`` (default ``~/.hainet``) itself comes from a flag or the environment
only, since it says where the TOML file is.  The TOML file looks like::

    db = "postgresql+psycopg://user@127.0.0.1/hainet"   # optional, default SQLite
    n_threads = 2

    [models.my-qwen]
    backend = "openai"
    url = "http://127.0.0.1:8080/v1"
    model = "qwen2.5-7b-instruct"
    mode = "chat"
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import tomlkit
from pydantic import Field
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from hainet.errors import ConfigError
from hainet.inputs import CONFIG_LIMITS, parse_toml, read_text

__all__ = [
    "Settings",
    "add_model_to_config",
    "atomic_write",
    "config_path",
    "home_dir",
    "load_settings",
]

DEFAULT_MODEL = "gemma-3-270m"


def home_dir(override: str | Path | None = None) -> Path:
    raw = override or os.environ.get("HAINET_HOME") or Path.home() / ".hainet"
    return Path(raw).expanduser()


def config_path(home: Path) -> Path:
    return home / "config.toml"


class Settings(BaseSettings):
    """Resolved settings.  Build with :func:`load_settings`."""

    model_config = SettingsConfigDict(env_prefix="HAINET_", extra="forbid", allow_inf_nan=False)
    toml_data: ClassVar[dict[str, Any] | None] = None

    home: Path = Field(default_factory=home_dir, description="Where hainet keeps its files.")
    db: str | None = Field(
        default=None, description="SQLAlchemy URL of the store; default SQLite in home."
    )
    default_model: str = Field(default=DEFAULT_MODEL, description="Model used when none given.")
    n_threads: int | None = Field(
        default=None, ge=1, description="Threads for in-process backends; default all cores."
    )
    search_threshold: float = Field(
        default=0.25,
        ge=-1.0,
        le=1.0,
        description="Minimal cosine similarity of `hainet agents search` (see agents/search.py).",
    )
    publish_threshold: float = Field(
        default=0.8,
        ge=0.0,
        lt=1.0,
        description="Success rate an agent must be above to be published.",
    )
    score_weights: dict[str, float] = Field(
        default_factory=dict,
        description="Weights of an agent's score components (performance, accuracy, "
        "resources, versatility, stability); unset ones keep 0.3/0.3/0.2/0.1/0.1.",
    )
    models: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="User models from the TOML [models.NAME] tables."
    )
    hubs: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Hub URLs; the first is the default of `agents push/pull --hub`.",
    )
    dht_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="UDP port of `hainet hub serve`'s DHT node (0: any); unset: off the network.",
    )
    dht_bootstrap: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="HOST:PORT of DHT nodes to join through (`hub serve`, `hainet net`).",
    )
    dht_ksize: int | None = Field(default=None, ge=1, le=64, description="DHT bucket size.")
    dht_pow_bits: int | None = Field(
        default=None, ge=0, le=32, description="Proof-of-work bits of a DHT node id."
    )
    dht_per_prefix: int | None = Field(
        default=None, ge=1, le=1024, description="DHT peers per address prefix per bucket."
    )

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{self.home / 'hainet.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls.toml_data is not None:
            # Read by read_toml (bounded, no nan/inf), not by pydantic-settings itself.
            sources.append(InitSettingsSource(settings_cls, init_kwargs=cls.toml_data))
        return tuple(sources)


def read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The text of the TOML file and its data, through :mod:`hainet.inputs`
    (1 MiB, depth 64, ``nan``/``inf`` refused); errors are ConfigErrors naming it."""
    text = read_text(path, error=ConfigError, limits=CONFIG_LIMITS)
    return text, parse_toml(text, where=str(path), error=ConfigError, limits=CONFIG_LIMITS)


def load_settings(**flags: Any) -> Settings:
    """Resolve settings; ``flags`` whose value is ``None`` are treated as not given."""
    given = {k: v for k, v in flags.items() if v is not None}
    home = home_dir(given.get("home"))
    given["home"] = home
    path = config_path(home)

    # A subclass per call carries the TOML path: pydantic-settings builds sources
    # from the class, and HAINET_HOME may differ between calls (tests, CLI flags).
    toml_data = read_toml(path)[1] if path.exists() else None

    class _Settings(Settings):
        pass

    _Settings.toml_data = toml_data

    try:
        return _Settings(**given)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(
            f"invalid setting {where!r}: {first['msg']}",
            hint=f"check flags, HAINET_* variables and {path}",
        ) from None
    except (OSError, ValueError) as exc:  # e.g. a HAINET_* variable that is not JSON
        raise ConfigError(f"cannot read settings: {exc}") from None


def atomic_write(path: Path, data: str) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def add_model_to_config(home: Path, name: str, table: dict[str, Any]) -> Path:
    """Add ``[models.NAME]`` to the TOML file, keeping the user's comments and layout."""
    path = config_path(home)
    # Checked by read_toml first: tomlkit itself recurses and keeps nan.
    try:
        doc = tomlkit.parse(read_toml(path)[0]) if path.exists() else tomlkit.document()
    except ValueError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    models = doc.get("models")
    if models is None:
        models = tomlkit.table(is_super_table=True)
        doc["models"] = models
    if name in models:
        raise ConfigError(f"model {name!r} is already in {path}", hint="choose another name")
    entry = tomlkit.table()
    for key, value in table.items():
        if value is not None:
            entry[key] = value
    models[name] = entry
    atomic_write(path, tomlkit.dumps(doc))
    return path
