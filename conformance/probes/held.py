"""A TCP connection held open across a policy change, to see whether established connections survive.

NetworkPolicy does not say what happens to connections established before a policy starts to deny
them: Calico keeps them (conntrack), other CNIs may cut them. Operators switching dryrun -> enforce
need to know, so the suite opens an HTTP keep-alive connection to a stand-in (``agnhost porter``
serves HTTP on each port), switches, and sends a second request on the same connection.

The client runs a bash script in the agnhost image (bash and /dev/tcp: the image installs bash,
test/images/agnhost/Dockerfile) through an exec with stdin, as the kubernetes python client's
examples/pod_exec.py does (``stream(..., stdin=True, _preload_content=False)``, ``write_stdin``,
``update``/``read_stdout``). Written for the live backends; it cannot run on a machine without a cluster.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from kubernetes.stream import stream
from kubernetes.stream.ws_client import ERROR_CHANNEL

from conformance.netpol.probing import Probe

# After a first line that is not ALIVE the script exits at once; its stderr and exit status reach us in
# later frames (stderr and stdout are separate channels, the status comes last, just before the close).
# How long to wait for them before reporting without them.
EXEC_END_WAIT_S = 5.0

# $1 host, $2 port, $3 read timeout in seconds. Prints one line per request: "ALIVE <status line>" or "DEAD"
# ("CONNECT-FAILED" if the connection cannot be opened at all; bash says why on stderr). SIGPIPE is
# ignored so that writing to a connection the peer reset prints DEAD instead of killing bash silently.
HOLD_SCRIPT = r"""
trap '' PIPE
exec 3<>"/dev/tcp/$1/$2" || { echo CONNECT-FAILED; exit 0; }
request() {
  printf 'GET / HTTP/1.1\r\nHost: probe\r\n\r\n' >&3 2>/dev/null || { echo DEAD; return; }
  if IFS= read -t "$3" -r status <&3; then
    while IFS= read -t 0.3 -r _ <&3; do :; done
    echo "ALIVE ${status%$'\r'}"
  else
    echo DEAD
  fi
}
request "$@"
IFS= read -r _
request "$@"
"""


def hold_command(host: str, port: int, timeout_s: float) -> list[str]:
    return ["bash", "-c", HOLD_SCRIPT, "hold", host, str(port), f"{timeout_s:g}"]


class HeldConnection:
    """An open connection from a client pod; ``still_alive()`` sends a second request on it."""

    def __init__(self, api: Any, probe: Probe, timeout_s: float) -> None:
        if probe.protocol != "TCP":
            raise ValueError(f"only a TCP connection can be held, not {probe.protocol} ({probe.port})")
        namespace, pod = probe.client.split("/", 1)
        self.probe = probe
        self.timeout_s = timeout_s
        self._buffer = ""
        self._resp = stream(
            api.connect_get_namespaced_pod_exec,
            pod,
            namespace,
            command=hold_command(probe.host, probe.port, timeout_s),
            stderr=True,
            stdin=True,
            stdout=True,
            tty=False,
            _preload_content=False,
        )
        first = self._line(timeout_s + 5)
        if not first.startswith("ALIVE"):
            self._wait_for_exec_end(EXEC_END_WAIT_S)
            why = self._exec_output()
            self.close()
            raise RuntimeError(
                f"could not open a connection {probe.client} -> {probe.host}:{probe.port}: {first}"
                + (f" ({why})" if why else "")
            )

    def _line(self, timeout_s: float) -> str:
        deadline = time.monotonic() + timeout_s
        while "\n" not in self._buffer and time.monotonic() < deadline and self._resp.is_open():
            self._resp.update(timeout=0.5)
            if self._resp.peek_stdout():
                self._buffer += self._resp.read_stdout()
        line, _, self._buffer = self._buffer.partition("\n")
        return line.strip() or f"DEAD (no answer within {timeout_s:g}s)"

    def _wait_for_exec_end(self, timeout_s: float) -> None:
        """Reads frames until the exec has closed its stream (stderr and status included) or time is up."""
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(Exception):  # a broken stream shows as closed
            while self._resp.is_open() and time.monotonic() < deadline:
                self._resp.update(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))

    def _exec_output(self) -> str:
        """What the exec said besides stdout: bash's stderr and, once it ended, its status."""
        parts = []
        with contextlib.suppress(Exception):
            parts.append((self._resp.read_stderr(timeout=0) or "").strip())
        if not self._resp.is_open():
            with contextlib.suppress(Exception):
                parts.append((self._resp.read_channel(ERROR_CHANNEL, timeout=0) or "").strip())
        return "; ".join(p for p in parts if p)

    def still_alive(self) -> bool:
        """False when the held connection no longer carries a request and its answer.

        Raises RuntimeError when the exec holding it has ended on its own: that says nothing
        about the connection (the API server or kubelet dropped the stream).
        """
        with contextlib.suppress(Exception):  # a broken stream shows as closed just below
            self._resp.update(timeout=0)
        if not self._resp.is_open():
            raise RuntimeError(
                f"the exec holding {self.probe.client} -> {self.probe.host}:{self.probe.port} "
                f"ended early: {self._exec_output() or 'no output'}"
            )
        self._resp.write_stdin("go\n")
        return self._line(self.timeout_s + 5).startswith("ALIVE")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._resp.close()
