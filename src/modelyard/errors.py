"""The gateway's error tree and the one place that renders it as OpenAI error JSON.

Raise the most specific subclass at the point where the problem is known; the API layer
turns it into `{"error": {"code", "message", "type", "param", "metadata"}}` with the
subclass's HTTP status. Anything that is not a `GatewayError` reaching the renderer is a
bug and becomes a 500.

    GatewayError
    ├── InvalidRequest        400  (names the parameter in `param`)
    ├── AuthError             401
    ├── PaymentRequired       402
    ├── Forbidden             403
    ├── NotFound              404  (unknown model, route, generation)
    ├── Conflict              409  (a name that is already taken)
    ├── RequestTimeout        408
    ├── PayloadTooLarge       413
    ├── RateLimited           429  (carries Retry-After)
    ├── UpstreamError         502  (a provider failed; `retryable` says whether to try another)
    │   ├── UpstreamTimeout      408
    │   ├── UpstreamRateLimited  429  (Retry-After)
    │   └── UpstreamRejected     400  (the upstream refused the request itself)
    ├── ServiceUnavailable    503  (the gateway's own dependencies are down)
    └── NoProviderAvailable   503  (no endpoint meets the request's requirements)
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson


class GatewayError(Exception):
    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.metadata = metadata or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.status,
            "message": self.message,
            "type": self.error_type,
            "param": self.param,
        }
        if self.metadata:
            error["metadata"] = self.metadata
        return {"error": error}

    def to_json(self) -> bytes:
        return orjson.dumps(self.body())


class InvalidRequest(GatewayError):
    status = 400
    error_type = "invalid_request_error"


class AuthError(GatewayError):
    status = 401
    error_type = "authentication_error"


class PaymentRequired(GatewayError):
    status = 402
    error_type = "insufficient_quota"


class Forbidden(GatewayError):
    status = 403
    error_type = "permission_error"


class NotFound(GatewayError):
    status = 404
    error_type = "not_found_error"


class Conflict(GatewayError):
    status = 409
    error_type = "conflict_error"


class RequestTimeout(GatewayError):
    status = 408
    error_type = "timeout_error"


class PayloadTooLarge(GatewayError):
    status = 413
    error_type = "request_too_large"


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_error"


class UpstreamError(GatewayError):
    """A provider failed. `retryable` tells the router whether another endpoint may help."""

    status = 502
    error_type = "upstream_error"

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message, metadata=metadata)
        self.upstream_status = upstream_status
        self.retryable = retryable
        self.retry_after = retry_after


class UpstreamTimeout(UpstreamError):
    """The upstream did not connect, start or finish in time."""

    status = 408
    error_type = "timeout_error"


class UpstreamRateLimited(UpstreamError):
    """The upstream answered 429; its Retry-After is passed on if nothing else serves."""

    status = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, upstream_status=429, retry_after=retry_after, **kwargs)
        if retry_after is not None:
            self.headers["Retry-After"] = str(max(1, round(retry_after)))


class UpstreamRejected(UpstreamError):
    """The upstream refused the request itself (its 400/404/413/422): the client's to fix."""

    status = 400
    error_type = "invalid_request_error"


class ServiceUnavailable(GatewayError):
    """The gateway itself cannot serve now (e.g. its shared rate limiter is down, fail-closed)."""

    status = 503
    error_type = "service_unavailable"


class NoProviderAvailable(GatewayError):
    status = 503
    error_type = "no_provider_available"


class ServerError(GatewayError):
    """Rendered for exceptions that are not GatewayErrors: always a bug."""

    status = 500
    error_type = "server_error"
