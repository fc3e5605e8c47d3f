"""jobgate.toml: destinations, defaults, and errors that name the setting."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from jobgate.config import load_config
from jobgate.errors import ConfigError, SpecError


def test_no_config_means_one_local_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("JOBGATE_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = load_config(home=tmp_path / "h")
    assert list(cfg.destinations) == ["local"]
    assert cfg.destinations["local"].capacity == os.cpu_count()
    assert cfg.database_url == f"sqlite:///{tmp_path / 'h' / 'jobgate.db'}"


def test_destinations_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "jobgate.toml"
    path.write_text("""
[gateway]
default_destination = "cluster"
[destinations.local]
capacity = 3
allowed_env = ["OMP_*", "MY_VAR"]
[destinations.cluster]
scheduler = "slurm"
capacity = 100
max_walltime_s = "2:00:00"
defaults = { partition = "debug", walltime = "10m" }
""")
    cfg = load_config(path, home=tmp_path)
    assert cfg.default_destination == "cluster"
    local, cluster = cfg.destinations["local"], cfg.destinations["cluster"]
    assert local.capacity == 3
    assert local.env_allowed("OMP_NUM_THREADS") and not local.env_allowed("LD_PRELOAD")
    assert cluster.max_walltime_s == 7200
    assert cluster.defaults.walltime_s == 600 and cluster.defaults.partition == "debug"
    assert cfg.destination(None).name == "cluster"


def test_config_errors_name_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "jobgate.toml"
    path.write_text("[destinations.hpc]\ncapacity = 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, home=tmp_path)
    assert info.value.field == "destinations.hpc.capacity"
    path.write_text("[destinations.hpc\n")
    with pytest.raises(ConfigError, match=r"jobgate\.toml"):
        load_config(path, home=tmp_path)


def test_unknown_destination_names_the_known_ones(tmp_path: Path) -> None:
    cfg = load_config(home=tmp_path)
    with pytest.raises(SpecError, match="known: local") as info:
        cfg.destination("gpu")
    assert info.value.field == "destination"
