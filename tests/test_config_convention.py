"""One convention for every YAML (`ml.config.config_path`): `AURORA_<NAME>_CONFIG` names the file a loader
reads instead of `config/<name>.yaml`, for every loader, and a file it names must exist."""

from __future__ import annotations

import pytest
import yaml

from ml import ensemble, policy, zoo_config
from ml.config import ConfigError
from ml.monitoring import config as lifecycle_config
from ml.portfolio.guardrails import GuardrailConfig

# the loaders that merge a YAML over dict defaults, by config name
LOADERS = [("policy", policy.load_config), ("ensemble", ensemble.load_config),
           ("lifecycle", lifecycle_config.load_config), ("zoo", zoo_config.load_config)]


def test_the_policy_and_its_guardrails_read_the_file_aurora_policy_config_names(tmp_path, monkeypatch):
    """Both halves of `config/policy.yaml` come from the same file: the optimizer's settings used to come
    from config/policy.yaml whatever the variable said, while the guardrails followed it."""
    cfg = yaml.safe_load(open(policy.DEFAULT_CONFIG_PATH))
    cfg["optimizer"]["min_risk_horizon_days"] = 42
    cfg["guardrails"]["gross_tolerance"] = 0.2
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(cfg))
    shipped = policy.load_config()["optimizer"]["min_risk_horizon_days"]
    monkeypatch.setenv("AURORA_POLICY_CONFIG", str(path))
    assert policy.load_config()["optimizer"]["min_risk_horizon_days"] == 42 != shipped
    assert GuardrailConfig.load().gross_tolerance == 0.2


@pytest.mark.parametrize("name, load", LOADERS)
def test_a_config_file_named_by_the_environment_must_exist(name, load, tmp_path, monkeypatch):
    """A typo in the variable would otherwise run the whole pipeline on the defaults without a word."""
    missing = tmp_path / f"{name}_typo.yaml"
    monkeypatch.setenv(f"AURORA_{name.upper()}_CONFIG", str(missing))
    with pytest.raises(ConfigError, match=f"AURORA_{name.upper()}_CONFIG=.*no such file"):
        load()


@pytest.mark.parametrize("name, load", LOADERS)
def test_every_loader_names_the_file_when_its_yaml_is_broken(name, load, tmp_path, monkeypatch):
    """The four loaders that merge over dict defaults read through one reader (`ml.config.read_source`), so
    a broken file is the same clear error everywhere, named, whether it comes from the environment or is
    passed as a path."""
    broken = tmp_path / f"{name}.yaml"
    broken.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match=f"{name}.yaml: not valid YAML"):
        load(broken)
    monkeypatch.setenv(f"AURORA_{name.upper()}_CONFIG", str(broken))
    with pytest.raises(ConfigError, match=f"{name}.yaml: not valid YAML"):
        load()
