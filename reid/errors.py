"""Project error types: user mistakes become one-line messages in the CLI."""


class ReidError(Exception):
    """A user-facing error (bad file, bad option, bad data).

    The CLI turns it into a one-line message and a non-zero exit, never a traceback.
    """


class ConfigError(ReidError):
    """An invalid configuration file or override."""


class DataError(ReidError):
    """A dataset folder, image or feature file that cannot be used."""


class SettingError(ReidError, ValueError):
    """An environment variable (REID_*) with a value that cannot be used."""
