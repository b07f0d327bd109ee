"""Domain errors. Each has a stable code, an HTTP status and extra data for the client."""
from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None, code: str | None = None,
                 http_status: int | None = None):
        super().__init__(message)
        self.message = message
        self.extra = extra or {}
        if code:
            self.code = code
        if http_status:
            self.http_status = http_status


class NotFound(ApplicationError):
    code, http_status = "not_found", 404


class InvalidInput(ApplicationError):
    code, http_status = "invalid", 400


class PayloadTooLarge(ApplicationError):
    code, http_status = "payload_too_large", 413
