"""Start-up errors: a user's mistake, printed as one line that says what to do."""

from core.errors import GatewayError


class StartupError(GatewayError):
    """The process cannot start as configured (missing model, broken flows, port taken...)."""
