"""Errors that the command line turns into one-line messages."""


class SaladpipeError(Exception):
    """Base of the errors a user can act on; the message is one line naming the culprit."""


class ConfigError(SaladpipeError):
    """A config or usage problem: unknown key, wrong type, missing file. Exit code 2."""


class SchemaError(SaladpipeError):
    """A table does not have the columns or types its contract requires."""
