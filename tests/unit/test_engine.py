"""harness.engine.pull_failure_reason: short reasons that never carry a host name."""

from __future__ import annotations

import pytest

from harness.engine import pull_failure_reason

HOSTS = ("registry.example.invalid", "docker.io", "mirror.corp.example", "proxy.corp.example",
         "127.0.0.53", "10.0.2.3", "localhost")

DNS_ERRORS = [
    'Error response from daemon: Get "https://registry.example.invalid/v2/": dial tcp: lookup '
    "registry.example.invalid on 127.0.0.53:53: no such host",
    "500 Server Error for http+docker://localhost/v1.43/images/create?tag=3.9-slim&fromImage="
    'python: Internal Server Error ("Get "https://registry.example.invalid/v2/": dial tcp: lookup '
    'registry.example.invalid on 10.0.2.3:53: server misbehaving")',
    'Error response from daemon: Get "https://mirror.corp.example:5000/v2/": dial tcp: lookup '
    "mirror.corp.example: Temporary failure in name resolution",
]


@pytest.mark.parametrize("message", DNS_ERRORS)
def test_dns_failure_is_a_host_free_reason(message: str) -> None:
    reason = pull_failure_reason(message)
    assert reason == "registry unreachable (name lookup failed)"
    assert not any(host in reason for host in HOSTS)


@pytest.mark.parametrize(("message", "reason"), [
    ('Get "https://registry.example.invalid/v2/": net/http: request canceled (Client.Timeout '
     "exceeded while awaiting headers)", "registry unreachable (no connection)"),
    ("dial tcp 10.0.2.3:443: connect: connection refused", "registry unreachable (no connection)"),
    ("manifest for python:3.99-slim not found: manifest unknown", "no such image in the registry"),
    ("pull access denied for python, repository does not exist", "the registry refused access"),
])
def test_known_failures_get_fixed_reasons(message: str, reason: str) -> None:
    assert pull_failure_reason(message) == reason


def test_unrecognised_failure_masks_hosts_and_urls() -> None:
    reason = pull_failure_reason(
        "received unexpected HTTP status: 503 Service Unavailable from proxy.corp.example:3128 "
        "via https://mirror.corp.example/v2/\nsecond line")
    assert reason.startswith("pull failed: received unexpected HTTP status: 503")
    assert "<host>" in reason
    assert "second line" not in reason
    assert not any(host in reason for host in HOSTS)
    assert len(reason) <= len("pull failed: ") + 120


def test_empty_message_still_gives_a_reason() -> None:
    assert pull_failure_reason("").startswith("pull failed")


def test_only_containers_of_dead_local_processes_are_leftovers() -> None:
    import os
    import socket

    from harness.engine import _owner_gone

    host = socket.gethostname()
    assert not _owner_gone(f"{host}:{os.getpid()}")
    assert _owner_gone(f"{host}:{2**22 + 12345}")
    assert not _owner_gone(f"another-host:{2**22 + 12345}")
    assert not _owner_gone("garbage")
