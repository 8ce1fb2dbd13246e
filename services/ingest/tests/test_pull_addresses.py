"""The address check of feed fetching, by classification only: no packet goes anywhere."""

from __future__ import annotations

import ipaddress

import pytest

from portal_ingest.pull.addresses import AddressPolicy, UrlRefused, check_url, refusal_reason


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address to refuse, not to bind)
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "address"),  # reserved
        ("192.0.2.10", "address"),  # documentation range
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("::ffff:10.0.0.1", "private"),
        ("2002:a9fe:a9fe::1", "metadata"),  # 6to4 wrapping 169.254.169.254
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
    ],
)
def test_internal_addresses_are_refused(address: str, reason: str) -> None:
    found = refusal_reason(ipaddress.ip_address(address))
    assert found is not None and reason in found


@pytest.mark.parametrize("address", ["203.113.131.1", "8.8.8.8", "2001:4860:4860::8888"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(ipaddress.ip_address(address)) is None


def test_allow_list_lets_through_exactly_one_loopback_port() -> None:
    policy = AddressPolicy.from_targets(["127.0.0.1:8080", "[::1]:9000"])
    assert policy.refusal(ipaddress.ip_address("127.0.0.1"), 8080) is None
    assert policy.refusal(ipaddress.ip_address("::1"), 9000) is None
    assert policy.refusal(ipaddress.ip_address("127.0.0.1"), 8081) is not None
    assert policy.refusal(ipaddress.ip_address("10.0.0.1"), 8080) is not None


def test_allow_list_never_opens_metadata() -> None:
    policy = AddressPolicy.from_targets(["169.254.169.254:80"])
    assert policy.refusal(ipaddress.ip_address("169.254.169.254"), 80) == "cloud metadata address"


def test_default_policy_refuses_all_internal() -> None:
    assert AddressPolicy().refusal(ipaddress.ip_address("127.0.0.1"), 80) is not None


@pytest.mark.parametrize("target", ["localhost:80", "127.0.0.1", "127.0.0.1:0", "1.2.3.4:x"])
def test_allow_list_entries_must_be_ip_and_port(target: str) -> None:
    with pytest.raises(ValueError, match="allowed target"):
        AddressPolicy.from_targets([target])


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.vn/feed", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("http://user:pw@example.vn/feed", "credentials"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://10.0.0.5/rss", "private"),
        ("http://[::1]:8080/rss", "loopback"),
        ("http:///rss", "no host"),
    ],
)
def test_urls_refused_before_any_request(url: str, message: str) -> None:
    with pytest.raises(UrlRefused, match=message):
        check_url(url, AddressPolicy())


def test_host_names_are_left_to_resolution() -> None:
    check_url("https://baochinhphu.vn/rss/home.rss", AddressPolicy())
