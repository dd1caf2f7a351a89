"""config.toml at the door (issue 12): bounded, and no nan or inf, for the settings
reader and for `hainet models add`'s round-trip editor alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from hainet.config import add_model_to_config, load_settings
from hainet.errors import ConfigError
from hainet.inputs import CONFIG_LIMITS


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("search_threshold = nan\n", r"at search_threshold: NaN is not allowed"),
        ("[score_weights]\naccuracy = inf\n", r"at score_weights\.accuracy: Infinity"),
        ("[models.m]\nctx = 1e999\n", r"at models\.m\.ctx: Infinity"),
        ("x = " + "[" * 100_000 + "]" * 100_000 + "\n", r"nested deeper than 64 levels"),
        ("x = " + "9" * 5000 + "\n", r"an integer over 4,300 digits"),
    ],
)
def test_a_hostile_config_toml_is_refused_naming_the_file(
    hainet_home: Path, text: str, message: str
) -> None:
    (hainet_home / "config.toml").write_text(text)
    with pytest.raises(ConfigError, match=rf"config\.toml: .*{message}"):
        load_settings()
    with pytest.raises(ConfigError, match=message):
        add_model_to_config(hainet_home, "x", {"backend": "mock"})


def test_a_config_over_the_limit_is_refused_before_it_is_read(hainet_home: Path) -> None:
    with (hainet_home / "config.toml").open("wb") as fh:
        fh.truncate(CONFIG_LIMITS.max_bytes + 1)
    with pytest.raises(ConfigError, match=r"config\.toml: 1,048,577 bytes, over the limit"):
        load_settings()


def test_a_nan_from_the_environment_is_refused(
    hainet_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HAINET_SCORE_WEIGHTS", '{"accuracy": NaN}')
    with pytest.raises(ConfigError, match="score_weights"):
        load_settings()


def test_a_good_config_still_loads(hainet_home: Path) -> None:
    (hainet_home / "config.toml").write_text("n_threads = 2\n[models.m]\nbackend = 'mock'\n")
    assert load_settings().n_threads == 2
    add_model_to_config(hainet_home, "other", {"backend": "mock"})
    assert set(load_settings().models) == {"m", "other"}
