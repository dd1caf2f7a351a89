from pathlib import Path

import pytest

from hainet.config import add_model_to_config, atomic_write, config_path, load_settings
from hainet.errors import ConfigError


def test_defaults_live_in_hainet_home(hainet_home: Path) -> None:
    cfg = load_settings()
    assert cfg.home == hainet_home
    assert cfg.db_url == f"sqlite:///{hainet_home / 'hainet.db'}"
    assert cfg.default_model == "gemma-3-270m"


def test_flags_beat_env_beat_toml(hainet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_path(hainet_home).write_text('n_threads = 3\ndefault_model = "from-toml"\n')
    assert load_settings().n_threads == 3
    assert load_settings().default_model == "from-toml"
    monkeypatch.setenv("HAINET_N_THREADS", "5")
    assert load_settings().n_threads == 5
    assert load_settings(n_threads=7).n_threads == 7
    # A flag left unset (None) does not hide the environment.
    assert load_settings(n_threads=None).n_threads == 5


def test_bad_values_name_the_setting(hainet_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAINET_N_THREADS", "zero")
    with pytest.raises(ConfigError, match="n_threads"):
        load_settings()


def test_unreadable_toml_is_a_config_error(hainet_home: Path) -> None:
    config_path(hainet_home).write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="config.toml"):
        load_settings()


def test_add_model_keeps_comments_and_refuses_duplicates(hainet_home: Path) -> None:
    path = config_path(hainet_home)
    path.write_text("# my settings\nn_threads = 2\n")
    add_model_to_config(
        hainet_home, "srv", {"backend": "openai", "url": "http://x/v1", "model": "m"}
    )
    text = path.read_text()
    assert "# my settings" in text and "[models.srv]" in text
    cfg = load_settings()
    assert cfg.models["srv"]["url"] == "http://x/v1" and cfg.n_threads == 2
    with pytest.raises(ConfigError, match="already"):
        add_model_to_config(hainet_home, "srv", {"backend": "openai"})
    assert path.read_text() == text


def test_atomic_write_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "out" / "a.json"
    atomic_write(target, "one")
    atomic_write(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["a.json"]
