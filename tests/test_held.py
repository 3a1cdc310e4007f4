"""The held-connection script, run for real with the local bash against a local HTTP/1.1 keep-alive server.

``agnhost porter`` is a Go net/http server: HTTP/1.1 with keep-alive and no idle timeout, answering
every request with the value of its SERVE_PORT_<n> variable (no trailing newline). The server below
answers the same way. The exec transport is not involved: the script's stdin and stdout are pipes here,
the websocket channels in a pod.
"""

from __future__ import annotations

import http.server
import os
import queue
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from conformance.netpol.probing import Probe
from conformance.probes import held
from conformance.probes.held import HeldConnection, hold_command

READ_TIMEOUT_S = 1.0


class PorterLikeHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Go's net/http
    server: PorterLikeServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        with srv.lock:
            srv.requests.append(self.client_address)
            nth = sum(1 for a in srv.requests if a == self.client_address)
        if nth > 1 and srv.after_first == "ignore":
            srv.release.wait(10)  # a dropped request: no answer ever comes back
            self.close_connection = True
            return
        body = b"server 8080/TCP"  # porter writes the value as is, without a newline
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        if nth == 1 and srv.after_first in ("close", "reset"):
            srv.release.wait(10)  # until the client has read the first answer
            if srv.after_first == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class PorterLikeServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, after_first: str) -> None:
        super().__init__(("127.0.0.1", 0), PorterLikeHandler)
        self.after_first = after_first
        self.requests: list[tuple[str, int]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()


@pytest.fixture
def porter() -> Iterator[callable]:
    servers: list[PorterLikeServer] = []

    def start(after_first: str = "keep") -> PorterLikeServer:
        srv = PorterLikeServer(after_first)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.release.set()
        srv.shutdown()
        srv.server_close()


def start_hold(port: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        hold_command("127.0.0.1", port, READ_TIMEOUT_S),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def second_request(proc: subprocess.Popen[str]) -> tuple[str, int]:
    """Sends "go" (what still_alive() writes to the exec's stdin), returns the script's answer."""
    out, _ = proc.communicate("go\n", timeout=READ_TIMEOUT_S + 10)
    return out.strip(), proc.returncode


def test_both_requests_go_over_one_kept_alive_connection(porter):
    srv = porter("keep")
    proc = start_hold(srv.server_port)
    assert proc.stdout.readline().strip() == "ALIVE HTTP/1.1 200 OK"
    answer, code = second_request(proc)
    assert answer == "ALIVE HTTP/1.1 200 OK"
    assert code == 0
    assert len(srv.requests) == 2
    assert srv.requests[0] == srv.requests[1], "the second request must reuse the first connection"


@pytest.mark.parametrize("after_first", ["close", "reset"])
def test_a_connection_the_server_ended_in_between_is_dead(porter, after_first):
    srv = porter(after_first)
    proc = start_hold(srv.server_port)
    assert proc.stdout.readline().strip() == "ALIVE HTTP/1.1 200 OK"
    srv.release.set()
    # Let the FIN or RST reach the client before it writes.
    threading.Event().wait(0.3)
    answer, code = second_request(proc)
    assert answer == "DEAD"
    assert code == 0
    assert len(srv.requests) == 1


def test_a_connection_whose_packets_are_dropped_is_dead_after_the_read_timeout(porter):
    srv = porter("ignore")
    proc = start_hold(srv.server_port)
    assert proc.stdout.readline().strip() == "ALIVE HTTP/1.1 200 OK"
    answer, code = second_request(proc)
    assert answer == "DEAD"
    assert code == 0


def test_a_port_nobody_listens_on_is_reported_as_connect_failed():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        proc = start_hold(port)
        out, err = proc.communicate("go\n", timeout=10)
    assert out.strip() == "CONNECT-FAILED"
    assert "refused" in err.lower()


# --- HeldConnection over the script, with the exec transport replaced by a local process ---------------


class ProcessExec:
    """The part of kubernetes.stream.ws_client.WSClient that HeldConnection uses, over a local process.

    Like the real client: output arrives in frames on channels 1 (stdout) and 2 (stderr), the exit status
    on the error channel (3) just before the close frame, and ``is_open()`` turns False only once
    ``update()`` has read that close frame.
    """

    def __init__(self, argv: list[str]) -> None:
        pipe = subprocess.PIPE
        self.proc = subprocess.Popen(argv, stdin=pipe, stdout=pipe, stderr=pipe)
        self.frames: queue.Queue = queue.Queue()
        self.channels: dict[int, str] = {}
        self.connected = True
        readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, 1), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, 2), daemon=True),
        ]
        for t in readers:
            t.start()
        threading.Thread(target=self._finish, args=(readers,), daemon=True).start()

    def _pump(self, pipe, channel: int) -> None:
        while chunk := os.read(pipe.fileno(), 4096):
            self.frames.put((channel, chunk.decode()))

    def _finish(self, readers: list[threading.Thread]) -> None:
        for t in readers:
            t.join()
        code = self.proc.wait()
        if code == 0:
            status = '{"metadata":{},"status":"Success"}'
        else:
            status = (
                '{"metadata":{},"status":"Failure","reason":"NonZeroExitCode",'
                f'"details":{{"causes":[{{"reason":"ExitCode","message":"{code}"}}]}}}}'
            )
        self.frames.put((3, status))
        self.frames.put(None)  # the close frame

    def update(self, timeout=0):
        if not self.connected:
            return
        try:
            frame = self.frames.get(timeout=timeout) if timeout else self.frames.get_nowait()
        except queue.Empty:
            return
        while True:
            if frame is None:
                self.connected = False
                return
            channel, data = frame
            self.channels[channel] = self.channels.get(channel, "") + data
            try:
                frame = self.frames.get_nowait()
            except queue.Empty:
                return

    def is_open(self):
        return self.connected

    def peek_stdout(self, timeout=0):
        self.update(timeout)
        return self.channels.get(1, "")

    def read_channel(self, channel, timeout=0):
        if channel not in self.channels:
            self.update(timeout)
        return self.channels.pop(channel, "")

    def read_stdout(self, timeout=None):
        return self.read_channel(1, timeout or 0)

    def read_stderr(self, timeout=None):
        return self.read_channel(2, timeout or 0)

    def write_stdin(self, data):
        if not self.connected:
            raise ConnectionError("websocket closed")
        self.proc.stdin.write(data.encode())
        self.proc.stdin.flush()

    def close(self, **kwargs):
        self.connected = False
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class ExecApi:
    """A CoreV1Api stand-in whose exec runs the command locally (127.0.0.1 is then the server above)."""

    def __init__(self) -> None:
        self.api_client = SimpleNamespace(configuration=SimpleNamespace(host="https://fake"), call_api=None)
        self.execs: list[ProcessExec] = []
        self.calls: list[tuple[str, str, dict]] = []
        self.container_script: str | None = None  # what the "container" runs instead of the command

    def connect_get_namespaced_pod_exec(self, name, namespace, **kwargs):
        self.calls.append((namespace, name, kwargs))
        argv = ["bash", "-c", self.container_script] if self.container_script else kwargs["command"]
        ws = ProcessExec(argv)
        self.execs.append(ws)
        return ws


@pytest.fixture
def exec_api() -> Iterator[ExecApi]:
    api = ExecApi()
    yield api
    for ws in api.execs:
        ws.close()


def held_probe(port: int, protocol: str = "TCP") -> Probe:
    return Probe(client="outsider/client", target="gim/api", host="127.0.0.1", port=port, protocol=protocol)


def test_held_connection_execs_in_the_client_pod_with_stdin(porter, exec_api):
    srv = porter("keep")
    held = HeldConnection(exec_api, held_probe(srv.server_port), READ_TIMEOUT_S)
    held.close()
    namespace, pod, kwargs = exec_api.calls[0]
    assert (namespace, pod) == ("outsider", "client")
    assert kwargs["stdin"] is True and kwargs["stdout"] is True and kwargs["tty"] is False


def test_held_connection_survives_when_the_server_keeps_it(porter, exec_api):
    srv = porter("keep")
    held = HeldConnection(exec_api, held_probe(srv.server_port), READ_TIMEOUT_S)
    try:
        assert held.still_alive() is True
    finally:
        held.close()
    assert len(srv.requests) == 2 and srv.requests[0] == srv.requests[1]


@pytest.mark.parametrize("after_first", ["close", "reset", "ignore"])
def test_held_connection_is_reported_cut_when_the_server_side_is_gone(porter, exec_api, after_first):
    srv = porter(after_first)
    held = HeldConnection(exec_api, held_probe(srv.server_port), READ_TIMEOUT_S)
    srv.release.set()
    threading.Event().wait(0.3)
    try:
        assert held.still_alive() is False
    finally:
        held.close()


def test_a_connection_that_cannot_be_opened_says_why(exec_api):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        with pytest.raises(RuntimeError, match=r"CONNECT-FAILED \(.*[Cc]onnection refused"):
            HeldConnection(exec_api, held_probe(port), READ_TIMEOUT_S)


def test_the_reason_is_waited_for_when_the_exec_says_it_after_its_first_line(exec_api):
    # A slow kubelet or API server: stderr and the exit status arrive well after CONNECT-FAILED.
    exec_api.container_script = (
        "echo CONNECT-FAILED; sleep 0.7; echo 'hold: connect: Connection refused' >&2; exit 3"
    )
    with pytest.raises(RuntimeError) as raised:
        HeldConnection(exec_api, held_probe(9), READ_TIMEOUT_S)
    message = str(raised.value)
    assert "CONNECT-FAILED (hold: connect: Connection refused" in message
    assert "NonZeroExitCode" in message  # the exit status came after stderr, and is still there


def test_an_exec_that_never_ends_after_a_failed_first_line_is_not_waited_for_forever(exec_api, monkeypatch):
    monkeypatch.setattr(held, "EXEC_END_WAIT_S", 0.5)
    exec_api.container_script = "echo CONNECT-FAILED; echo 'still talking' >&2; exec sleep 30"
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"CONNECT-FAILED \(still talking\)$"):
        HeldConnection(exec_api, held_probe(9), READ_TIMEOUT_S)
    assert time.monotonic() - started < 10  # bounded: far below the exec's 30 s
    assert exec_api.execs[0].proc.poll() is not None, "the exec is closed, not left running"


def test_an_exec_that_ended_on_its_own_is_an_error_not_a_cut_connection(porter, exec_api):
    srv = porter("keep")
    held = HeldConnection(exec_api, held_probe(srv.server_port), READ_TIMEOUT_S)
    exec_api.execs[0].proc.kill()  # the stream dies (API server restarted, kubelet dropped it...)
    exec_api.execs[0].proc.wait()
    threading.Event().wait(0.3)
    with pytest.raises(RuntimeError, match="ended early"):
        held.still_alive()
    held.close()


def test_only_tcp_connections_can_be_held(exec_api):
    with pytest.raises(ValueError, match="only a TCP connection"):
        HeldConnection(exec_api, held_probe(5353, "UDP"), READ_TIMEOUT_S)
    assert exec_api.calls == []
