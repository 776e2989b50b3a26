"""Errors that mean "the user must fix something": the CLI prints them as one line, no traceback."""


class DustcmbError(Exception):
    """Base class for problems the user can fix (bad input, bad parameters)."""


class ConfigError(DustcmbError, ValueError):
    """A parameter file or option that cannot be used as written."""


class InputError(DustcmbError, ValueError):
    """An input file or array that cannot be used: missing, corrupt, wrong shape or bad values."""
