"""User-facing errors: the CLI prints ``str(err)`` as one line on stderr and exits non-zero."""


class ClaimSentryError(Exception):
    """An error the user can act on (bad input, missing model, failed gate). One line, no traceback."""

    exit_code = 2


class InputError(ClaimSentryError):
    """The input directory or a table in it cannot be used."""


class GateFailed(ClaimSentryError):
    """The data-quality gate stopped the run (table-level break or error rate above threshold)."""

    exit_code = 3


class ModelNotFound(ClaimSentryError):
    """No champion model is registered (run ``claimsentry train`` first)."""

    exit_code = 4
