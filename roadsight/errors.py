"""Errors that mean the user's input is wrong, not the code.

Commands report a `UserInputError` as one line naming the key or file and what is wrong
(`roadsight.io.RunRecord.reporting`); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import inspect
import re

from hydra.errors import InstantiationException


class UserInputError(ValueError):
    """Bad input: a config value, a dataset, a checkpoint, a video. The message names it."""


class ConfigError(UserInputError):
    """A config value outside its choices; the message names the key and the valid choices."""


def user_input_error(error: BaseException) -> UserInputError | None:
    """The `UserInputError` behind `error`, or None. `hydra.utils.instantiate` wraps what a
    config's target raises in an InstantiationException; this looks through that wrapper. A
    config key its target does not take (e.g. `camera.centering` on a pinhole camera) counts:
    a ConfigError naming the key and the target's settings."""
    wrapper = None
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        wrapper, error = error, error.__cause__
    if isinstance(error, UserInputError):
        return error
    if wrapper is not None and isinstance(error, TypeError):
        return unknown_setting(str(wrapper), str(error))
    return None


def unknown_setting(wrapper: str, type_error: str) -> ConfigError | None:
    """ConfigError for instantiate's "got an unexpected keyword argument" when the key is not a
    parameter of the config's target (else the TypeError came from inside it: a bug, None)."""
    from hydra.utils import get_object

    key = re.search(r"got an unexpected keyword argument '(\w+)'", type_error)
    target = re.search(r"target '([\w.]+)'", wrapper)
    if key is None or target is None:
        return None
    try:
        params = inspect.signature(get_object(target.group(1))).parameters
    except (ImportError, AttributeError, TypeError, ValueError):
        return None
    if key.group(1) in params or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None
    node = re.search(r"full_key: (\S+)", wrapper)
    full_key = f"{node.group(1)}.{key.group(1)}" if node else key.group(1)
    return not_a_setting(full_key, target.group(1), settings_of(params))


def settings_of(params) -> list[str]:
    """The keyword settings among a signature's `params` (all but self, *args, **kwargs)."""
    return [name for name, p in params.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def not_a_setting(full_key: str, target: str, settings: list[str]) -> ConfigError:
    """"KEY: not a setting of TARGET; choose from ...": a config key its target does not take."""
    return ConfigError(f"{full_key}: not a setting of {target}; choose from {', '.join(settings)}")
