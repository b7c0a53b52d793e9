"""engine: host-free pull reasons; sandboxed runs (limits, OOM, timeouts, a lost or
stopping engine) against a fake docker client."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests

from repro_matrix.containers import engine, sandbox
from repro_matrix.containers.engine import pull_failure_reason
from repro_matrix.errors import EngineError
from repro_matrix.model import RawRun

HOSTS = ("registry.example.invalid", "example.invalid", "mirror.corp.example", "proxy.corp.example",
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
    ('Head "http://127.0.0.1:5000/v2/library/python/manifests/3.8-slim": no basic auth '
     "credentials", "the registry needs credentials (docker login to it first)"),
    ("unauthorized: authentication required",
     "the registry needs credentials (docker login to it first)"),
    ("failed to register layer: unexpected EOF", "registry connection lost during the pull"),
    ("read tcp 127.0.0.1:40000->127.0.0.1:5000: read: connection reset by peer",
     "registry connection lost during the pull"),
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

    from repro_matrix.containers.engine import _owner_gone

    host = socket.gethostname()
    assert not _owner_gone(f"{host}:{os.getpid()}")
    assert _owner_gone(f"{host}:{2**22 + 12345}")
    assert not _owner_gone(f"another-host:{2**22 + 12345}")
    assert not _owner_gone("garbage")


# ---- sandboxed runs against a fake docker client: limits, OOM, engine loss, stop_all ----------


class FakeContainer:
    def __init__(self, client: FakeClient, wait: Any, state: dict[str, Any]) -> None:
        self.client = client
        self.id = "c0ffee"
        self._wait = wait
        self.attrs: dict[str, Any] = {"State": state}
        self.removed = False
        self.killed = False

    def put_archive(self, path: str, data: bytes) -> None:
        pass

    def start(self) -> None:
        pass

    def wait(self, timeout: float) -> dict[str, int]:
        result: dict[str, int] = self._wait(timeout)
        return result

    def kill(self) -> None:
        self.killed = True

    def logs(self, stdout: bool, stderr: bool, stream: bool = False,
             follow: bool = False) -> Any:
        if stream:  # what `try` follows live: chunks may split a UTF-8 character
            assert follow
            return iter([b"caf\xc3", b"\xa9 first\n", b"second\n"])
        return b"output\n"

    def reload(self) -> None:
        pass

    def remove(self, force: bool, v: bool) -> None:
        self.removed = True
        if self.client.engine_gone:
            raise requests.exceptions.ConnectionError("Connection refused")


class FakeContainers:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.created: list[dict[str, Any]] = []
        self.made: list[FakeContainer] = []

    def create(self, image: str, **kwargs: Any) -> FakeContainer:
        self.created.append(kwargs)
        container = FakeContainer(self.client, self.client.wait, dict(self.client.state))
        self.made.append(container)
        return container


class FakeVolume:
    def __init__(self, volumes: FakeVolumes, name: str, labels: dict[str, str]) -> None:
        self.volumes, self.name, self.attrs = volumes, name, {"Labels": labels}

    def remove(self, force: bool) -> None:
        self.volumes.made.pop(self.name)


class FakeVolumes:
    def __init__(self) -> None:
        self.made: dict[str, FakeVolume] = {}

    def create(self, name: str, labels: dict[str, str]) -> FakeVolume:
        self.made[name] = FakeVolume(self, name, labels)
        return self.made[name]

    def get(self, name: str) -> FakeVolume:
        return self.made[name]


class FakeClient:
    def __init__(self, wait: Any, state: dict[str, Any] | None = None,
                 kill_events: int = 0) -> None:
        self.volumes = FakeVolumes()
        self.wait = wait
        self.state = state or {"OOMKilled": False, "StartedAt": "2024-01-02T03:04:05.5Z"}
        self.kill_events = kill_events
        self.engine_gone = False
        self.containers = FakeContainers(self)
        self.event_queries: list[dict[str, Any]] = []

    def info(self) -> dict[str, str]:
        return {"SystemTime": "2024-01-02T03:04:09.25Z"}

    def events(self, **kwargs: Any) -> list[dict[str, str]]:
        self.event_queries.append(kwargs)
        return [{"status": "kill"}] * self.kill_events


def exits(code: int) -> Any:
    return lambda timeout: {"StatusCode": code}


@pytest.fixture(autouse=True)
def fresh_live(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine, "_LIVE", engine._Live())


def run(client: FakeClient, timeout_s: float = 5, **limits: Any) -> RawRun:
    return engine.Engine(client).run("sha256:" + "a" * 64, ["python", "/repro/r.py"],
                                     {"r.py": b"pass"}, timeout_s, {}, **limits)


def test_default_sandbox_name_is_unchanged_so_stored_cells_stay_valid() -> None:
    assert sandbox.NAME == ("ro-root,tmpfs-64m,no-net,cap-drop-all,no-new-privs,uid-65534,"
                            "mem-512m,pids-256")


def test_the_sandbox_name_covers_every_restriction_of_the_table() -> None:
    # A restriction added to the table without a word in the name (or a word left out of the
    # name's order) would change what a cell runs in without changing its input key.
    rows = sandbox._table("512m", 256, "64m", sandbox.WORKDIR)
    named = [row.keyword for row in rows if row.word]
    assert sorted(named) == sorted(sandbox.NAME_ORDER)
    assert {row.keyword for row in rows if not row.word} == {"working_dir", "memswap_limit"}
    assert all(row.word in sandbox.NAME.split(",") for row in rows if row.word)
    assert sandbox.create_options().keys() == {row.keyword for row in rows}


@pytest.mark.parametrize("limits", [{"memory": "64m"}, {"pids": 32}, {"tmpfs": "8m"}])
def test_a_case_limit_changes_the_sandbox_name(limits: dict[str, Any]) -> None:
    changed = sandbox.name(**limits)
    assert changed != sandbox.NAME
    assert str(next(iter(limits.values()))) in changed


def test_case_limits_reach_the_container_and_the_sandbox_stays_locked_down() -> None:
    client = FakeClient(exits(0))
    raw = run(client, memory="64m", pids=32, tmpfs="8m")
    kwargs = client.containers.created[-1]  # the first only filled the repro's volume
    assert (kwargs["mem_limit"], kwargs["memswap_limit"], kwargs["pids_limit"]) == ("64m", "64m",
                                                                                    32)
    assert kwargs["tmpfs"] == {"/tmp": "rw,size=8m"}
    assert kwargs["network_disabled"] and kwargs["read_only"]
    assert kwargs["cap_drop"] == ["ALL"] and kwargs["user"] == "65534:65534"
    assert (raw.exit_code, raw.timed_out, raw.oom_killed) == (0, False, False)
    assert client.containers.made[-1].removed


def test_streamed_run_passes_output_live_in_the_same_sandbox() -> None:
    seen: list[str] = []
    client = FakeClient(exits(1))
    raw = run(client, on_output=seen.append)
    assert "".join(seen) == "café first\nsecond\n"
    kwargs = client.containers.created[-1]
    assert kwargs["network_disabled"] and kwargs["read_only"] and kwargs["cap_drop"] == ["ALL"]
    assert (raw.exit_code, raw.output) == (1, "output\n")  # stored output read after the exit
    assert client.containers.made[-1].removed


def test_cells_share_one_read_only_volume_of_the_repro_filled_once() -> None:
    client = FakeClient(exits(0))
    eng = engine.Engine(client)
    for _ in range(3):
        eng.run("sha256:" + "a" * 64, ["python", "/repro/r.py"], {"r.py": b"pass"}, 5, {})
    eng.run("sha256:" + "a" * 64, ["python", "/repro/r.py"], {"r.py": b"other"}, 5, {})
    assert len(client.volumes.made) == 2  # one per content, not per cell
    filler = client.containers.created[0]
    assert filler["mounts"][0]["ReadOnly"] is False  # filled before any cell mounts it
    cell_mounts = [kwargs["mounts"][0] for kwargs in client.containers.created
                   if kwargs.get("user")]
    assert len(cell_mounts) == 4
    assert all(m["Target"] == "/repro" and m["ReadOnly"] and m["Source"] in client.volumes.made
               for m in cell_mounts)
    assert all(c.removed for c in client.containers.made)
    eng.close()
    assert client.volumes.made == {}


def test_oom_killed_state_is_reported() -> None:
    client = FakeClient(exits(137), state={"OOMKilled": True})
    raw = run(client)
    assert raw.oom_killed and raw.exit_code == 137
    assert client.event_queries == []  # the kernel's kill, not the engine's: no events query


def test_connection_lost_before_the_limit_is_an_engine_error_not_a_timeout() -> None:
    def lost(timeout: float) -> dict[str, int]:
        raise requests.exceptions.ConnectionError("('Connection aborted.', RemoteDisconnected())")

    client = FakeClient(lost)
    client.engine_gone = True  # removal fails too: still one EngineError, never a raw exception
    with pytest.raises(EngineError, match="lost the engine while a cell ran") as info:
        run(client, timeout_s=60)
    assert "run the same command again" in info.value.hint
    assert client.containers.made[-1].removed and not client.containers.made[0].killed


@pytest.mark.parametrize("error", [requests.exceptions.ReadTimeout("Read timed out."),
                                   requests.exceptions.ConnectionError("Read timed out.")])
def test_read_timeout_at_the_limit_kills_and_reports_a_timeout(error: Exception) -> None:
    def slow(timeout: float) -> dict[str, int]:
        threading.Event().wait(timeout)
        raise error

    client = FakeClient(slow)
    raw = run(client, timeout_s=0.05)
    assert raw.timed_out and raw.exit_code is None
    assert client.containers.made[-1].killed and client.containers.made[-1].removed


def test_a_signal_sent_through_the_engine_is_an_engine_error() -> None:
    client = FakeClient(exits(137), kill_events=1)
    with pytest.raises(EngineError, match="killed through the engine"):
        run(client)
    (query,) = client.event_queries
    assert query["filters"] == {"container": "c0ffee", "event": "kill"}
    assert (query["since"], query["until"]) == ("1704164644", "1704164649.250000")


def test_a_signal_from_inside_the_container_is_the_repros_outcome() -> None:
    raw = run(FakeClient(exits(139)))
    assert raw.exit_code == 139 and not raw.timed_out


def test_stop_all_removes_running_containers_and_refuses_new_ones() -> None:
    client = FakeClient(exits(0))
    container = FakeContainer(client, exits(0), {})
    engine._LIVE.add(container)
    assert engine.stop_all() == 1
    assert container.removed
    with pytest.raises(EngineError, match="shutting down"):
        run(client)
    assert client.containers.created == []
    with pytest.raises(EngineError):
        engine.check_stopping()


def test_a_cell_stopped_by_stop_all_is_not_an_outcome() -> None:
    def stopped_meanwhile(timeout: float) -> dict[str, int]:
        engine.stop_all()
        return {"StatusCode": 137}

    client = FakeClient(stopped_meanwhile)
    with pytest.raises(EngineError, match="shutting down"):
        run(client)
    assert client.containers.made[-1].removed


def test_unreachable_engine_names_docker_host_and_what_to_do(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def missing(self: socket.socket, address: object) -> None:
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(socket.socket, "connect", missing)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent.sock")
    with pytest.raises(EngineError) as info:
        engine.connect()
    line = info.value.one_line()
    assert "no Docker engine answers at unix:///nonexistent.sock" in line
    assert "DOCKER_HOST" in info.value.hint and "\n" not in line
