"""Checks that an error is OpenAI-shaped, as the SDKs and their users expect."""

from __future__ import annotations

from typing import Any

import openai


def assert_error_body(body: Any, status: int, response_status: int) -> dict[str, Any]:
    assert response_status == status
    assert isinstance(body, dict) and set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None or isinstance(error["param"], str)
    assert error["code"] is None or isinstance(error["code"], str)
    return dict(error)


def sdk_error(exc: openai.APIStatusError, status: int) -> dict[str, Any]:
    """Check an SDK exception's body; returns the inner `error` object."""
    error = assert_error_body(exc.response.json(), status, exc.status_code)
    assert exc.body == error  # the SDK hands users the inner object
    return error
