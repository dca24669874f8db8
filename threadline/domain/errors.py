"""Errors the service raises. Each maps to one OpenAI-shaped error body in `api.errors`.

Keeping them here lets `service` and `engine` speak about failures without knowing HTTP.
"""

from __future__ import annotations


class ThreadlineError(Exception):
    """Base of every error a client can be shown."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(ThreadlineError):
    status_code = 400
    error_type = "invalid_request_error"


class NotFound(ThreadlineError):
    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, kind: str, object_id: str):
        super().__init__(f"No {kind} found with id '{object_id}'.", code=None)


class Conflict(InvalidRequest):
    """A request that is well formed but not allowed in the object's current state."""


class Unauthorized(ThreadlineError):
    status_code = 401
    error_type = "invalid_request_error"


class TooLarge(ThreadlineError):
    """A body or file larger than the service accepts."""

    status_code = 413
    error_type = "invalid_request_error"


class UpstreamFailed(ThreadlineError):
    """A service the request needed (an embedding upstream) failed to answer."""

    status_code = 502
    error_type = "server_error"
