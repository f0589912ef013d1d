"""Which URLs a request may ask an upstream to fetch (image_url, a file part's file_data).

A self-hosted upstream that fetches image URLs (vLLM, llama.cpp's server) fetches them from
inside the operator's network, so a URL is refused unless it is https (or data:) and its
host is, and resolves only to, public addresses: no loopback, private, link-local (cloud
metadata at 169.254.169.254), CGNAT, multicast or reserved address, also when spelled as a
decimal, octal or hex IPv4 number or hidden in an IPv4-mapped, 6to4 or NAT64 IPv6 address.
The operator may allow given hosts or networks (MODELYARD_IMAGE_URL_ALLOW) and http://
(MODELYARD_IMAGE_URL_ALLOW_HTTP).

The upstream resolves the host again when it fetches; a name whose DNS answer changes
between the two lookups (DNS rebinding) is outside what a check here can see.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from modelyard.config import Settings
from modelyard.errors import InvalidRequest
from modelyard.schema.chat import ChatRequest, FilePart, ImagePart

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# host, port → the addresses it resolves to
Resolver = Callable[[str, int], Awaitable[list[str]]]

# Names of cloud metadata services, refused however they resolve here.
METADATA_HOSTS = frozenset(
    {"metadata.google.internal", "metadata.goog", "metadata", "instance-data", "localhost"}
)
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# WHATWG URL parsing: a host whose last label is a number is an IPv4 address.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")
# More distinct hosts than this in one request are refused rather than resolved.
MAX_HOSTS = 16
MAX_URL_CHARS = 16_384  # data: URLs excepted
ALLOW_HINT = "the operator can allow hosts or networks with MODELYARD_IMAGE_URL_ALLOW"


class UrlRefused(ValueError):
    """Why a URL is refused, in words for the client."""


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True)
class ImageUrlPolicy:
    allow_http: bool = False
    allowed_hosts: frozenset[str] = frozenset()
    allowed_networks: tuple[Network, ...] = ()
    resolve_timeout_s: float = 2.0
    resolver: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def parse(
        cls, allow: str = "", *, allow_http: bool = False, resolver: Resolver = system_resolver
    ) -> ImageUrlPolicy:
        """`allow`: comma-separated host names and networks ("cdn.internal,10.1.0.0/16");
        "*.example.com" allows its subdomains too, "*" every host name (addresses are still
        checked, as they are in the URL)."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for entry in (e.strip().lower() for e in allow.split(",")):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if not re.fullmatch(r"\*|(\*\.)?[a-z0-9_.-]+", entry):
                    raise ValueError(
                        f"MODELYARD_IMAGE_URL_ALLOW: {entry!r} is neither a host name nor a network"
                    ) from None
                hosts.add(entry.rstrip("."))
        return cls(
            allow_http=allow_http,
            allowed_hosts=frozenset(hosts),
            allowed_networks=tuple(networks),
            resolver=resolver,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageUrlPolicy:
        return cls.parse(settings.image_url_allow, allow_http=settings.image_url_allow_http)

    def address_allowed(self, ip: Address) -> bool:
        if any(ip in net for net in self.allowed_networks):
            return True
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return self.address_allowed(embedded)
        return ip.is_global and not ip.is_multicast and not ip.is_reserved

    def host_of(self, url: str) -> tuple[str, int] | None:
        """The (host, port) to resolve, None when nothing needs resolving; UrlRefused if bad."""
        scheme, _, rest = url.partition(":")
        scheme = scheme.lower()
        if scheme == "data":
            if rest.startswith("image/") and ";base64," in rest:
                return None
            raise UrlRefused("a data: URL must be data:image/...;base64,...")
        if scheme not in ("https", "http"):
            raise UrlRefused("must be an https URL or a data:image/...;base64 URL")
        if scheme == "http" and not self.allow_http:
            raise UrlRefused(
                "must be an https URL (http:// is refused unless the operator sets "
                "MODELYARD_IMAGE_URL_ALLOW_HTTP)"
            )
        if len(url) > MAX_URL_CHARS:
            raise UrlRefused(f"is longer than {MAX_URL_CHARS} characters")
        if any(c == "\\" or c.isspace() or not c.isprintable() for c in url):
            raise UrlRefused("must not contain spaces, control characters or backslashes")
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise UrlRefused("must not carry a user name or password")
        try:
            port = parts.port or (443 if scheme == "https" else 80)
        except ValueError:
            raise UrlRefused("has an invalid port") from None
        host = (parts.hostname or "").rstrip(".")
        if not host:
            raise UrlRefused("has no host")
        if host in self.allowed_hosts:
            return None
        if host in METADATA_HOSTS or host.endswith(".localhost"):
            raise UrlRefused(f"points to {host!r}, which is not a public host ({ALLOW_HINT})")
        literal = _literal_address(host)
        if literal is None:
            return None if self._wildcard_allows(host) else (host, port)
        if not self.address_allowed(literal):
            raise UrlRefused(f"points to {literal}, which is not a public address ({ALLOW_HINT})")
        return None

    def _wildcard_allows(self, host: str) -> bool:
        if "*" in self.allowed_hosts:
            return True
        labels = host.split(".")
        return any(f"*.{'.'.join(labels[i:])}" in self.allowed_hosts for i in range(len(labels)))

    async def check_host(self, host: str, port: int) -> None:
        try:
            async with asyncio.timeout(self.resolve_timeout_s):
                addresses = await self.resolver(host, port)
        except (OSError, UnicodeError, TimeoutError):
            raise UrlRefused(f"has a host, {host!r}, that could not be resolved") from None
        if not addresses:
            raise UrlRefused(f"has a host, {host!r}, that could not be resolved")
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
            if not self.address_allowed(ip):
                raise UrlRefused(
                    f"has a host, {host!r}, that resolves to {ip}, which is not a public "
                    f"address ({ALLOW_HINT})"
                )


def _embedded_ipv4(ip: Address) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _literal_address(host: str) -> Address | None:
    """The address a host spells, as a browser or curl reads it (127.1, 0x7f000001, 0177...)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_LABEL.fullmatch(host.rsplit(".", 1)[-1]):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        raise UrlRefused(f"has a host, {host!r}, that is not a valid IPv4 address") from None


def fetched_urls(request: ChatRequest) -> Iterator[tuple[str, str]]:
    """(param, url) of every URL in the request that an upstream may fetch."""
    for i, message in enumerate(request.messages):
        content = message.content
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if isinstance(part, ImagePart):
                yield f"messages[{i}].content[{j}].image_url.url", part.image_url.url
            elif isinstance(part, FilePart) and part.file.file_data:
                data = part.file.file_data
                if data.partition(":")[0].lower() in ("http", "https"):
                    yield f"messages[{i}].content[{j}].file.file_data", data


async def check_image_urls(request: ChatRequest, policy: ImageUrlPolicy) -> None:
    """400 naming the first URL the policy refuses; hosts resolved concurrently, once each."""
    to_resolve: dict[tuple[str, int], str] = {}
    for param, url in fetched_urls(request):
        try:
            target = policy.host_of(url)
        except UrlRefused as refused:
            raise _refusal(param, refused) from None
        if target is not None:
            to_resolve.setdefault(target, param)
    if not to_resolve:
        return
    if len(to_resolve) > MAX_HOSTS:
        param = list(to_resolve.values())[MAX_HOSTS]
        raise InvalidRequest(
            f"'{param}': a request may fetch from at most {MAX_HOSTS} distinct hosts.",
            param=param,
        )
    results = await asyncio.gather(
        *(policy.check_host(host, port) for host, port in to_resolve),
        return_exceptions=True,
    )
    for param, result in zip(to_resolve.values(), results, strict=True):
        if isinstance(result, UrlRefused):
            raise _refusal(param, result)
        if isinstance(result, BaseException):
            raise result


def _refusal(param: str, refused: UrlRefused) -> InvalidRequest:
    return InvalidRequest(f"'{param}' {refused}.", param=param)
