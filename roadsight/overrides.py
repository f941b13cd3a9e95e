"""Command-line overrides checked before Hydra composes the config, for one-line errors.

Hydra's own messages for an unknown group option or an unknown key span a dozen lines (or
tell the user to append the key with `+`, which would then be silently ignored by highway-env):
these checks name the override, what is wrong, and the valid choices or nearest keys.
"""

from __future__ import annotations

from difflib import get_close_matches
from pathlib import Path

from omegaconf import OmegaConf

from roadsight.paths import CONF_DIR


def _overrides(argv: list[str]) -> list[tuple[str, str, str]]:
    """(prefix, key, value) of each `key=value` override; prefix is "", "+", "++" or "~"."""
    found = []
    for arg in argv:
        key, eq, value = arg.partition("=")
        if not eq or key.startswith("hydra"):
            continue
        prefix = key[: len(key) - len(key.lstrip("+~"))]
        found.append((prefix, key[len(prefix):], value))
    return found


def config_groups(conf_dir: Path = CONF_DIR) -> list[str]:
    """The config groups under `conf_dir` (folders holding yaml options), `hydra` excluded."""
    return sorted(p.name for p in conf_dir.iterdir()
                  if p.is_dir() and p.name != "hydra" and any(p.glob("*.yaml")))


def unknown_choice(argv: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """"agent=foo: no such option; choose from dqn, ppo" for the first override of a config
    group that names no file of that group (each value of a sweep's a,b), else None."""
    groups = set(config_groups(conf_dir))
    for _, key, value in _overrides(argv):
        if key not in groups:
            continue
        for v in value.split(","):
            if v != "null" and not (conf_dir / key / f"{v}.yaml").is_file():
                choices = sorted(p.stem for p in (conf_dir / key).glob("*.yaml"))
                return f"{key}={v}: no such option; choose from {', '.join(choices)}"
    return None


def default_choice(config_name: str, group: str, conf_dir: Path = CONF_DIR) -> str | None:
    """The option of `group` that the primary config `config_name` selects by default."""
    path = conf_dir / f"{config_name}.yaml"
    if not path.is_file():
        return None
    for entry in OmegaConf.load(path).get("defaults", []):
        if OmegaConf.is_dict(entry) and group in entry:
            return str(entry[group])
    return None


def unknown_env_key(argv: list[str], config_name: str, conf_dir: Path = CONF_DIR) -> str | None:
    """For `env.config.KEY=value` (no `+`) where KEY is not in the selected env's config file
    (conf/env/<env>.yaml lists every key of the env's default_config()): a line naming KEY and
    the nearest valid keys, else None."""
    overrides = _overrides(argv)
    envs = [v for _, k, v in overrides if k == "env"] or [default_choice(config_name, "env",
                                                                          conf_dir)]
    for prefix, key, _ in overrides:
        if prefix or not key.startswith("env.config."):
            continue
        name = key.removeprefix("env.config.").split(".")[0]
        for env in (e for value in envs if value for e in value.split(",")):
            path = conf_dir / "env" / f"{env}.yaml"
            valid = list(OmegaConf.load(path).get("config", {})) if path.is_file() else []
            if valid and name not in valid:
                near = get_close_matches(name, valid, n=3, cutoff=0.6)
                hint = (f"did you mean {', '.join(near)}?" if near
                        else f"valid keys: {', '.join(valid)}")
                return f"env.config.{name}: env={env} has no such key; {hint}"
    return None


def unknown_launcher(argv: list[str], conf_dir: Path = CONF_DIR) -> str | None:
    """"hydra/launcher=foo: no such launcher; choose from ..." (conf/hydra/launcher/ and Hydra's
    own `basic`), else None."""
    for arg in argv:
        key, eq, value = arg.partition("=")
        if eq and key.lstrip("+~") == "hydra/launcher":
            choices = sorted({"basic", *(p.stem for p in (conf_dir / "hydra" / "launcher")
                                         .glob("*.yaml"))})
            if value not in choices:
                return f"hydra/launcher={value}: no such launcher; choose from {', '.join(choices)}"
    return None


def unparsable(argv: list[str]) -> str | None:
    """"KEY=VALUE: not a Hydra override (...)" for the first `key=value` argument Hydra's
    override grammar rejects (a value holding `=` needs quotes), else None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import HydraException

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            parser.parse_override(arg)
        except HydraException as e:
            key, _, value = arg.partition("=")
            hint = (f"a value holding '=' goes in quotes: {key}='{value}'"
                    if "=" in value and not value.startswith(("'", '"')) else
                    str(e).splitlines()[0])
            return f"{arg}: not a Hydra override ({hint})"
    return None


def check_overrides(argv: list[str], config_name: str, conf_dir: Path = CONF_DIR) -> str | None:
    """The first problem `unparsable`, `unknown_choice`, `unknown_launcher` or `unknown_env_key`
    finds in `argv`, else None."""
    return (unparsable(argv) or unknown_choice(argv, conf_dir) or unknown_launcher(argv, conf_dir)
            or unknown_env_key(argv, config_name, conf_dir))
