"""Batched probes: the real batch script run by the real /bin/sh, with a stand-in for the agnhost binary.

The stand-in (``FAKE_AGNHOST``) answers ``agnhost connect HOST:PORT --timeout=... --protocol=...`` as
agnhost's connect.go does (exit 0; exit 1 with TIMEOUT, REFUSED, DNS:, OTHER: on stderr), choosing its
answer by port, and logs every call. Everything of ours (the script, its spec encoding, the parsing,
the confirmation rule, the prober's fallback) runs for real.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from conformance.netpol.probing import Observation, Outcome, Probe, to_confirm
from conformance.probes.batch import BatchItem, batch_command, parse_batch_output, shell_missing
from conformance.probes.prober import run_batches
from tests.test_prober import SUCCESS, FakeWS, exit_status

# Port -> what the stand-in does. 80xx connects, 81xx times out, 82xx is refused, 83xx fails in DNS,
# 84xx exits 2 with nothing agnhost would say, 85xx waits until BARRIER calls have started (proves the
# connects run at once: run one after the other, they would never all be in flight).
FAKE_AGNHOST = r"""#!/bin/sh
target="$2"; port="${target##*:}"
echo "$target" >> "$FAKE_LOG"
case "$port" in
  80*) exit 0 ;;
  81*) echo "TIMEOUT" >&2; exit 1 ;;
  82*) echo "REFUSED" >&2; exit 1 ;;
  83*) echo "DNS: lookup failed" >&2; exit 1 ;;
  84*) echo "panic: something else" >&2; exit 2 ;;
  85*)
    touch "$FAKE_DIR/started-$port"
    n=0
    while [ "$(ls "$FAKE_DIR" | grep -c started-)" -lt "$BARRIER" ]; do
      n=$((n+1)); [ $n -gt 500 ] && { echo "OTHER: not run at once" >&2; exit 1; }
      sleep 0.01
    done
    exit 0 ;;
esac
exit 3
"""


@pytest.fixture
def agnhost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "agnhost"
    path.write_text(FAKE_AGNHOST)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "barrier").mkdir()
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("FAKE_DIR", str(tmp_path / "barrier"))
    return path


def probe(port: int, client: str = "ns-a/client", host: str = "10.244.0.7") -> Probe:
    return Probe(client, f"gim/pod-{port}", host, port)


def run_script(items: list[BatchItem], agnhost: Path) -> tuple[str, list[list[Observation]]]:
    command = batch_command(items, 2.0, agnhost=str(agnhost))
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60, env=os.environ)
    return done.stdout, parse_batch_output(items, done.stdout, 0.1)


def calls(agnhost: Path) -> list[str]:
    log = agnhost.parent / "calls.log"
    return log.read_text().split() if log.exists() else []


def test_every_outcome_comes_through_the_batch_as_a_single_probe_would_see_it(agnhost):
    items = [BatchItem(probe(port), confirm=False) for port in (8001, 8101, 8201, 8301, 8401)]
    _, samples = run_script(items, agnhost)
    assert [[o.outcome for o in s] for s in samples] == [
        [Outcome.CONNECTED],
        [Outcome.BLOCKED],
        [Outcome.REFUSED],
        [Outcome.ERROR],
        [Outcome.ERROR],
    ]
    assert samples[1][0].detail == "TIMEOUT"
    assert "DNS: lookup failed" in samples[3][0].detail
    assert "exited 2" in samples[4][0].detail and "panic" in samples[4][0].detail
    assert all(s[0].probe == i.probe for s, i in zip(samples, items, strict=True))


def test_the_connects_of_one_exec_run_at_once(agnhost, monkeypatch):
    monkeypatch.setenv("BARRIER", "4")
    items = [BatchItem(probe(port), confirm=False) for port in (8501, 8502, 8503, 8504)]
    _, samples = run_script(items, agnhost)
    assert [s[0].outcome for s in samples] == [Outcome.CONNECTED] * 4, [s[0].detail for s in samples]


def test_a_block_to_confirm_is_sampled_twice_in_the_same_exec(agnhost):
    items = [
        BatchItem(probe(8101), confirm=True),  # blocked: confirmed
        BatchItem(probe(8201), confirm=True),  # refused (may be a reject): confirmed too
        BatchItem(probe(8102), confirm=False),  # blocked, but an allowed flow: sampled once
        BatchItem(probe(8001), confirm=False),
    ]
    _, samples = run_script(items, agnhost)
    assert [[o.outcome for o in s] for s in samples] == [
        [Outcome.BLOCKED, Outcome.BLOCKED],
        [Outcome.REFUSED, Outcome.REFUSED],
        [Outcome.BLOCKED],
        [Outcome.CONNECTED],
    ]
    assert sorted(calls(agnhost)) == sorted(
        ["10.244.0.7:8101"] * 2 + ["10.244.0.7:8201"] * 2 + ["10.244.0.7:8102", "10.244.0.7:8001"]
    )


def test_a_flow_expected_blocked_that_connects_holds_back_the_confirmations(agnhost):
    """The CNI is still programming: the round ends after one timeout, as to_confirm says."""
    items = [BatchItem(probe(8101), confirm=True), BatchItem(probe(8002), confirm=True)]
    _, samples = run_script(items, agnhost)
    assert [[o.outcome for o in s] for s in samples] == [[Outcome.BLOCKED], [Outcome.CONNECTED]]
    first = [s[0] for s in samples]
    assert to_confirm([i.probe for i in items], [True, True], first) == []


def test_the_script_and_to_confirm_agree_on_what_is_confirmed(agnhost):
    items = [BatchItem(probe(p), confirm=c) for p, c in ((8101, True), (8001, False), (8201, True))]
    _, samples = run_script(items, agnhost)
    first = [s[0] for s in samples]
    confirmed = [i for i, s in enumerate(samples) if len(s) == 2]
    assert confirmed == to_confirm([i.probe for i in items], [i.confirm for i in items], first) == [0, 2]


def test_a_probe_without_a_result_line_is_an_error_never_a_block():
    items = [BatchItem(probe(8101), confirm=True), BatchItem(probe(8001), confirm=False)]
    samples = parse_batch_output(items, "1 1 0 \ngarbage line\n", 0.1)
    assert samples[0][0].outcome is Outcome.ERROR and "no result line" in samples[0][0].detail
    assert samples[1][0].outcome is Outcome.CONNECTED


# -- the prober: one exec per client pod, and the fallback for an image without /bin/sh -----------------
class PodExec:
    """Stands in for the client's CoreV1Api: runs the exec'd command on this machine, as the container
    would (its /agnhost is the stand-in), or fails as the runtime does when /bin/sh is not in the image."""

    def __init__(self, agnhost: Path, shell: bool = True) -> None:
        self.agnhost, self.shell = agnhost, shell
        self.api_client = SimpleNamespace(configuration=SimpleNamespace(host="https://fake"), call_api=None)
        self.execs: list[tuple[str, list[str]]] = []

    def connect_get_namespaced_pod_exec(self, name, namespace, **kwargs):
        command = list(kwargs["command"])
        self.execs.append((f"{namespace}/{name}", command))
        if command[0] == "/bin/sh" and not self.shell:
            message = (
                "Internal error occurred: error executing command in container: failed to exec in container:"
                ' OCI runtime exec failed: exec failed: unable to start container process: exec: "/bin/sh":'
                " stat /bin/sh: no such file or directory: unknown"
            )
            return FakeWS(
                status=json.dumps({"metadata": {}, "status": "Failure", "message": message, "code": 500})
            )
        command = [c.replace("/agnhost connect", f"{self.agnhost} connect") for c in command]
        if command[0] == "/agnhost":
            command[0] = str(self.agnhost)
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ)
        status = SUCCESS if done.returncode == 0 else exit_status(done.returncode)
        return FakeWS(stdout=done.stdout, stderr=done.stderr, status=status)


def test_one_exec_per_client_pod_carries_all_of_its_probes(agnhost):
    pod = PodExec(agnhost)
    probes = [probe(8001, "a/client"), probe(8101, "a/client"), probe(8002, "b/client")]
    samples = run_batches(lambda: pod, probes, 2.0, [False, True, False], workers=4)
    assert [[o.outcome for o in s] for s in samples] == [
        [Outcome.CONNECTED],
        [Outcome.BLOCKED, Outcome.BLOCKED],
        [Outcome.CONNECTED],
    ]
    assert sorted(who for who, _ in pod.execs) == ["a/client", "b/client"]


def test_an_image_without_a_shell_is_probed_one_exec_per_probe_from_then_on(agnhost):
    pod = PodExec(agnhost, shell=False)
    no_shell: set[str] = set()
    probes = [probe(8001), probe(8101)]
    samples = run_batches(lambda: pod, probes, 2.0, [False, True], workers=2, no_shell=no_shell)
    assert [[o.outcome for o in s] for s in samples] == [
        [Outcome.CONNECTED],
        [Outcome.BLOCKED, Outcome.BLOCKED],
    ]
    assert no_shell == {"ns-a/client"}
    pod.execs.clear()
    run_batches(lambda: pod, probes, 2.0, [False, False], workers=2, no_shell=no_shell)
    assert [command[0] for _, command in pod.execs] == ["/agnhost", "/agnhost"], "no batch tried again"


def test_a_missing_shell_is_told_from_other_exec_failures():
    assert shell_missing(
        'exec in a/client failed: ... exec: "/bin/sh": stat /bin/sh: no such file or directory'
    )
    assert not shell_missing('exec in a/client failed: container not found ("client")')


def test_batching_off_runs_one_exec_per_probe(agnhost):
    pod = PodExec(agnhost)
    run_batches(lambda: pod, [probe(8001), probe(8002)], 2.0, [False, False], workers=2, batch=False)
    assert [command[:2] for _, command in pod.execs] == [["/agnhost", "connect"]] * 2


def test_one_exec_per_probe_holds_back_confirmations_as_the_batch_does(agnhost):
    """A flow expected blocked that connected (the CNI is still programming) holds back the confirmations
    of its client on the per-probe path too: both paths follow to_confirm."""
    items = [BatchItem(probe(8101), confirm=True), BatchItem(probe(8002), confirm=True)]
    _, batched = run_script(items, agnhost)
    pod = PodExec(agnhost)
    one_by_one = run_batches(lambda: pod, [i.probe for i in items], 2.0, [True, True], workers=2, batch=False)
    assert [[o.outcome for o in s] for s in one_by_one] == [[o.outcome for o in s] for s in batched]
    assert [[o.outcome for o in s] for s in one_by_one] == [[Outcome.BLOCKED], [Outcome.CONNECTED]]
