"""Errors that mean the user's input is wrong, not the code.

Commands report a `UserInputError` as one line naming the key or file and what is wrong
(`roadsight.io.RunRecord.reporting`); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

from hydra.errors import InstantiationException


class UserInputError(ValueError):
    """Bad input: a config value, a dataset, a checkpoint, a video. The message names it."""


class ConfigError(UserInputError):
    """A config value outside its choices; the message names the key and the valid choices."""


def user_input_error(error: BaseException) -> UserInputError | None:
    """The `UserInputError` behind `error`, or None. `hydra.utils.instantiate` wraps what a
    config's target raises in an InstantiationException; this looks through that wrapper."""
    while isinstance(error, InstantiationException) and error.__cause__ is not None:
        error = error.__cause__
    return error if isinstance(error, UserInputError) else None
