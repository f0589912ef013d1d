"""Image URLs: https (or data:) to public addresses only, unless the operator allows more."""

from __future__ import annotations

import orjson
import pytest

from modelyard.errors import InvalidRequest
from modelyard.schema.chat import parse_chat_request
from modelyard.schema.image_urls import ImageUrlPolicy, check_image_urls

PUBLIC_DNS = {"cdn.example.com": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"]}
PRIVATE_DNS = {
    "rebind.example.com": ["93.184.215.14", "10.0.0.5"],  # one private answer is enough
    "v6.example.com": ["fd00::1"],
    "cdn.internal": ["10.1.2.3"],
}


async def fake_resolver(host: str, port: int) -> list[str]:
    answers = {**PUBLIC_DNS, **PRIVATE_DNS}
    if host not in answers:
        raise OSError(f"no such host {host}")
    return answers[host]


def with_image(*urls: str) -> bytes:
    parts = [{"type": "text", "text": "what is it?"}]
    parts += [{"type": "image_url", "image_url": {"url": url}} for url in urls]
    return orjson.dumps({"model": "m/x", "messages": [{"role": "user", "content": parts}]})


async def verdict(url: str, policy: ImageUrlPolicy | None = None) -> str | None:
    try:
        request = parse_chat_request(with_image(url))  # refuses other schemes already
        await check_image_urls(request, policy or ImageUrlPolicy.parse(resolver=fake_resolver))
    except InvalidRequest as refused:
        assert refused.param == "messages[0].content[1].image_url.url"
        return refused.message
    return None


ALLOWED = [
    "https://cdn.example.com/cat.png",
    "https://CDN.example.com./cat.png?size=2#x",
    "https://93.184.215.14/cat.png",
    "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]:8443/cat.png",
    "https://[::ffff:93.184.215.14]/cat.png",
    "https://[64:ff9b::5db8:d70e]/cat.png",  # NAT64 of a public address
    "data:image/png;base64,iVBORw0KGgo=",
]

REFUSED = {
    "http://cdn.example.com/cat.png": "https",
    "ftp://cdn.example.com/cat.png": "https",
    "file:///etc/passwd": "https",
    "gopher://127.0.0.1:6379/_INFO": "https",
    "data:text/html;base64,PGgxPg==": "data:image",
    "https://127.0.0.1/x.png": "127.0.0.1",
    "https://localhost/x.png": "localhost",
    "https://app.localhost/x.png": "localhost",
    "https://169.254.169.254/latest/meta-data/": "169.254.169.254",
    "https://metadata.google.internal/computeMetadata/v1/": "metadata.google.internal",
    "https://[fd00:ec2::254]/latest/meta-data/": "fd00:ec2::254",
    "https://10.0.0.1/x.png": "10.0.0.1",
    "https://172.16.5.4/x.png": "172.16.5.4",
    "https://192.168.1.1/x.png": "192.168.1.1",
    "https://100.64.0.1/x.png": "100.64.0.1",  # CGNAT
    "https://0.0.0.0/x.png": "0.0.0.0",
    "https://224.0.0.1/x.png": "224.0.0.1",
    "https://240.0.0.1/x.png": "240.0.0.1",
    "https://255.255.255.255/x.png": "255.255.255.255",
    "https://[::1]/x.png": "::1",
    "https://[::]/x.png": "::",
    "https://[fe80::1]/x.png": "fe80::1",
    "https://[ff02::1]/x.png": "ff02::1",
    "https://[::ffff:127.0.0.1]/x.png": "::ffff:7f00:1",
    "https://[::ffff:169.254.169.254]/x.png": "::ffff:a9fe:a9fe",
    "https://[2002:a9fe:a9fe::1]/x.png": "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
    "https://[64:ff9b::a9fe:a9fe]/x.png": "64:ff9b::a9fe:a9fe",  # NAT64 of it
    "https://2130706433/x.png": "127.0.0.1",  # decimal
    "https://0x7f000001/x.png": "127.0.0.1",  # hex
    "https://0177.0.0.1/x.png": "127.0.0.1",  # octal
    "https://127.1/x.png": "127.0.0.1",  # short form
    "https://0xa9.0xfe.0xa9.0xfe/": "169.254.169.254",
    "https://1.2.3.4.5/x.png": "not a valid IPv4",
    "https://rebind.example.com/x.png": "10.0.0.5",
    "https://v6.example.com/x.png": "fd00::1",
    "https://cdn.internal/x.png": "10.1.2.3",
    "https://nowhere.example/x.png": "could not be resolved",
    "https://user:pw@cdn.example.com/x.png": "user name",
    "https://cdn.example.com\\@127.0.0.1/x.png": "backslash",
    "https://cdn.example.com:99999/x.png": "port",
    "https:///x.png": "no host",
    "https://cdn.example.com/" + "a" * 20_000: "longer than",
}


@pytest.mark.parametrize("url", ALLOWED)
async def test_public_https_and_data_urls_pass(url: str) -> None:
    assert await verdict(url) is None


@pytest.mark.parametrize(("url", "reason"), REFUSED.items(), ids=[u[:60] for u in REFUSED])
async def test_refused_urls_say_why(url: str, reason: str) -> None:
    message = await verdict(url)
    assert message is not None and reason in message


async def test_the_operator_allows_hosts_networks_and_http() -> None:
    policy = ImageUrlPolicy.parse(
        "cdn.internal, 10.0.0.0/8,fd00::/8", allow_http=True, resolver=fake_resolver
    )
    for url in (
        "https://cdn.internal/x.png",  # allowed by name, not resolved
        "https://rebind.example.com/x.png",  # resolves into an allowed network
        "https://10.9.8.7/x.png",
        "https://v6.example.com/x.png",
        "http://cdn.example.com/x.png",
    ):
        assert await verdict(url, policy) is None, url
    assert "172.16.0.1" in (await verdict("https://172.16.0.1/x.png", policy) or "")


async def test_wildcards_allow_subdomains_or_every_name_but_not_addresses() -> None:
    async def unresolvable(host: str, port: int) -> list[str]:
        raise OSError("no DNS here")  # e.g. a gateway that reaches the world by a proxy

    subdomains = ImageUrlPolicy.parse("*.example.com", resolver=unresolvable)
    assert await verdict("https://img.cdn.example.com/x.png", subdomains) is None
    assert await verdict("https://example.com/x.png", subdomains) is None
    assert "could not be resolved" in (await verdict("https://example.org/x.png", subdomains) or "")
    everything = ImageUrlPolicy.parse("*", resolver=unresolvable)
    assert await verdict("https://anything.example/x.png", everything) is None
    assert "127.0.0.1" in (await verdict("https://127.0.0.1/x.png", everything) or "")
    assert "127.0.0.1" in (await verdict("https://0x7f000001/x.png", everything) or "")
    assert "metadata" in (await verdict("https://metadata.google.internal/", everything) or "")


def test_a_bad_allow_entry_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="neither a host name nor a network"):
        ImageUrlPolicy.parse("cdn.internal,http://x/")


async def test_a_slow_resolver_times_out_as_unresolved() -> None:
    async def hangs(host: str, port: int) -> list[str]:
        import asyncio

        await asyncio.Event().wait()
        return []

    policy = ImageUrlPolicy(resolver=hangs, resolve_timeout_s=0.01)
    assert "could not be resolved" in (await verdict("https://slow.example/x.png", policy) or "")


async def test_file_data_urls_are_checked_too() -> None:
    body = orjson.dumps(
        {
            "model": "m/x",
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "read it"},
                        {"type": "file", "file": {"file_data": "https://169.254.169.254/x.pdf"}},
                    ],
                }
            ],
        }
    )
    with pytest.raises(InvalidRequest) as caught:
        await check_image_urls(parse_chat_request(body), ImageUrlPolicy())
    assert caught.value.param == "messages[0].content[1].file.file_data"


async def test_many_distinct_hosts_are_refused_before_resolving() -> None:
    urls = [f"https://h{n}.example.com/x.png" for n in range(20)]
    request = parse_chat_request(with_image(*urls))
    resolved: list[str] = []

    async def counting(host: str, port: int) -> list[str]:
        resolved.append(host)
        return ["93.184.215.14"]

    with pytest.raises(InvalidRequest, match="at most 16 distinct hosts"):
        await check_image_urls(request, ImageUrlPolicy(resolver=counting))
    assert resolved == []
