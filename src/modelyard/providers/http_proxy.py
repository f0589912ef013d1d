"""Egress proxies for the upstream client: which proxy, if any, reaches an origin, and the
CONNECT handshake that opens a tunnel through one.

The choice follows the environment the way urllib, requests and curl read it:
HTTPS_PROXY / HTTP_PROXY by the origin's scheme, else ALL_PROXY, and NO_PROXY for the
origins that bypass it (upper or lower case; the stdlib's parser). It is read once, when
the client is made. Proxies are spoken to in plain HTTP (`http://[user:password@]host:port`):
plain origins through the proxy in absolute form, https origins through a CONNECT tunnel
with TLS to the origin inside it.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit
from urllib.request import (  # type: ignore[attr-defined]  # typeshed lacks the second
    getproxies_environment,
    proxy_bypass_environment,
)

MAX_CONNECT_ANSWER_BYTES = 64 * 1024


class ProxyError(Exception):
    """The proxy is misconfigured, or refused or broke the tunnel."""


@dataclass(frozen=True, slots=True)
class Proxy:
    host: str
    port: int
    authorization: bytes | None  # the Proxy-Authorization header's value
    shown: str  # the proxy's address for messages, without credentials

    @classmethod
    def of(cls, variable: str, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            where = f"{parts.scheme}://{parts.hostname or ''}"
            raise ProxyError(f"{variable} is {where}: only http:// proxies are supported")
        port = parts.port or 80
        authorization = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = b"Basic " + base64.b64encode(pair.encode())
        return cls(parts.hostname, port, authorization, f"{parts.hostname}:{port}")

    def connect_request(self, host: str, port: int) -> bytes:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        head = "\r\n".join(lines).encode("idna")
        if self.authorization is not None:
            head += b"\r\nProxy-Authorization: " + self.authorization
        return head + b"\r\n\r\n"


class ProxyChoice:
    """The proxies named by the environment, and which one an origin goes through."""

    def __init__(self) -> None:
        proxies = getproxies_environment()
        self._bypass = {"no": proxies["no"]} if proxies.get("no") else {}
        self._by_scheme: dict[str, Proxy | ProxyError] = {}
        for scheme in ("http", "https"):
            name = scheme if proxies.get(scheme) else "all"
            url = proxies.get(name)
            if url:
                variable = f"{name.upper()}_PROXY"
                try:
                    self._by_scheme[scheme] = Proxy.of(variable, url)
                except ProxyError as exc:
                    self._by_scheme[scheme] = exc  # an error for the requests it concerns only

    def proxy_for(self, tls: bool, host: str, port: int) -> Proxy | None:
        found = self._by_scheme.get("https" if tls else "http")
        if found is None:
            return None
        # host:port, so that NO_PROXY entries with and without a port both match
        if self._bypass and proxy_bypass_environment(f"{host}:{port}", self._bypass):
            return None
        if isinstance(found, ProxyError):
            raise found
        return found


class TunnelHandshake(asyncio.Protocol):
    """Reads the proxy's answer to CONNECT: its head, up to the blank line."""

    def __init__(self, proxy: Proxy) -> None:
        self._proxy = proxy
        self._buffer = bytearray()
        self.answer: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if self.answer.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self._check(bytes(self._buffer[:end]))
        elif len(self._buffer) > MAX_CONNECT_ANSWER_BYTES:
            self._refuse(f"the proxy {self._proxy.shown} sent an oversized answer to CONNECT")

    def connection_lost(self, exc: Exception | None) -> None:
        self._refuse(f"the proxy {self._proxy.shown} closed the connection during CONNECT")

    def _check(self, head: bytes) -> None:
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or not fields[0].startswith("HTTP/") or not fields[1].isdigit():
            self._refuse(f"the proxy {self._proxy.shown} answered CONNECT with {status_line!r}")
        elif not 200 <= int(fields[1]) < 300:
            self._refuse(
                f"the proxy {self._proxy.shown} refused CONNECT: HTTP {' '.join(fields[1:])}"
            )
        else:
            self.answer.set_result(None)

    def _refuse(self, message: str) -> None:
        if not self.answer.done():
            self.answer.set_exception(ProxyError(message))
