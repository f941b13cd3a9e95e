"""An app's config composed in this process, as `roadsight <app> OVERRIDES` would compose it."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from roadsight.paths import CONF_DIR


def compose_app(config_name: str, overrides: list[str] | tuple[str, ...] = ()) -> DictConfig:
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(config_name, overrides=list(overrides))
