"""Headers for browsers: every answer is read as the type it declares
(``nosniff``), and the page (``/``) runs only its own files: no inline
script, no other origin, inside no other site's frame (issue #30, point 8).
The OpenAPI pages (``/docs``) keep FastAPI's own, which load from a CDN."""

from __future__ import annotations

from services.api.cache import ASGIApp, Message, Receive, Scope, Send

PAGE = "/"
PAGE_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
EVERY_ANSWER = [(b"x-content-type-options", b"nosniff")]
PAGE_HEADERS = [
    (b"content-security-policy", PAGE_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = EVERY_ANSWER + (PAGE_HEADERS if scope["path"] == PAGE else [])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # A copy: the response cache inside keeps the message it sent.
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
