"""The prober, driven through the real kubernetes.stream.stream() with a fake of the client's API object.

The fake stands in for the external kubernetes client only (CoreV1Api + its WSClient): our prober,
classification and exit-code reading all run for real.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from types import SimpleNamespace

from kubernetes.client.rest import ApiException

from conformance.netpol.probing import Outcome, Probe
from conformance.probes.prober import exit_code_from_status, pod_events, run_probes

SUCCESS = '{"metadata":{},"status":"Success"}'


def exit_status(code: int) -> str:
    # What the API server sends on the error channel when the command exits non-zero.
    return (
        '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: '
        f'error executing command [/agnhost connect], exit code {code}","reason":"NonZeroExitCode",'
        f'"details":{{"causes":[{{"reason":"ExitCode","message":"{code}"}}]}}}}'
    )


class FakeWS:
    """The part of kubernetes.stream.ws_client.WSClient the prober uses."""

    def __init__(self, stdout="", stderr="", status=SUCCESS, hang=False):
        self.channels = {1: stdout, 2: stderr, 3: status}
        self.hang, self.open, self.closed = hang, True, False

    def run_forever(self, timeout=None):
        if not self.hang:
            self.open = False

    def is_open(self):
        return self.open

    def read_channel(self, channel, timeout=0):
        return self.channels.pop(channel, "")

    def read_stdout(self, timeout=None):
        return self.read_channel(1)

    def read_stderr(self, timeout=None):
        return self.read_channel(2)

    def close(self, **kwargs):
        self.closed = True


class FakeApiClient:
    def __init__(self, tracker):
        self.configuration = SimpleNamespace(host="https://fake")
        self.call_api = None  # stream() swaps this attribute while it runs
        self.tracker = tracker
        self.active = 0
        self.threads = set()


class FakeCoreApi:
    """Answers execs from a script keyed by the probed host."""

    def __init__(self, script, tracker):
        self.api_client = FakeApiClient(tracker)
        self.script = script
        self.calls = []

    def connect_get_namespaced_pod_exec(self, name, namespace, **kwargs):
        client = self.api_client
        tracker = client.tracker
        client.threads.add(threading.get_ident())
        with tracker["lock"]:
            client.active += 1
            tracker["shared_use"] |= client.active > 1
            tracker["running"] += 1
            tracker["peak"] = max(tracker["peak"], tracker["running"])
        try:
            self.calls.append((namespace, name, kwargs))
            host = kwargs["command"][2].rsplit(":", 1)[0]
            answer = self.script[host]
            if isinstance(answer, Exception):
                raise answer
            answer = dict(answer)
            time.sleep(answer.pop("delay", 0.0))  # the exec's latency, while this API object is in use
            return FakeWS(**answer)
        finally:
            with tracker["lock"]:
                client.active -= 1
                tracker["running"] -= 1


def make_factory(script):
    tracker = {"lock": threading.Lock(), "shared_use": False, "running": 0, "peak": 0}
    made = []

    def factory():
        api = FakeCoreApi(script, tracker)
        made.append(api)
        return api

    return factory, made, tracker


def probe(host, client="ingress-nginx/client", port=8080):
    return Probe(client=client, target="gim/nginx", host=host, port=port)


SCRIPT = {
    "10.0.0.1": {},
    "10.0.0.2": {"stderr": "TIMEOUT\n", "status": exit_status(1)},
    "10.0.0.3": {"stderr": "REFUSED\n", "status": exit_status(1)},
    "10.0.0.4": ApiException(status=0, reason="Handshake status 404 Not Found"),
    "10.0.0.5": {
        "status": '{"metadata":{},"status":"Failure","message":"container not found (\\"client\\")"}'
    },
    "10.0.0.6": {
        "stderr": "OTHER: dial tcp 10.0.0.6:8080: connect: no route to host\n",
        "status": exit_status(1),
    },
    "10.0.0.7": {"hang": True},
}


def test_each_probe_gets_its_outcome_in_order():
    factory, _, _ = make_factory(SCRIPT)
    probes = [probe(f"10.0.0.{i}") for i in range(1, 8)]
    observations = run_probes(factory, probes, timeout_s=1, workers=3)
    assert [o.probe for o in observations] == probes
    assert [o.outcome for o in observations] == [
        Outcome.CONNECTED,
        Outcome.BLOCKED,
        Outcome.REFUSED,
        Outcome.ERROR,
        Outcome.ERROR,
        Outcome.ERROR,
        Outcome.ERROR,
    ]
    details = [o.detail for o in observations]
    assert "Handshake status 404" in details[3]
    assert "container not found" in details[4]
    assert "no route to host" in details[5]
    assert "did not finish" in details[6]


def test_probes_exec_agnhost_connect_in_the_client_pod():
    factory, made, _ = make_factory(SCRIPT)
    run_probes(
        factory, [probe("10.0.0.1", client="monitoring/prom-client", port=9090)], timeout_s=2, workers=1
    )
    ((namespace, name, kwargs),) = made[0].calls
    assert (namespace, name) == ("monitoring", "prom-client")
    assert kwargs["command"] == ["/agnhost", "connect", "10.0.0.1:9090", "--timeout=2s", "--protocol=tcp"]
    assert kwargs["stdout"] and kwargs["stderr"] and not kwargs["stdin"] and not kwargs["tty"]
    assert kwargs["_preload_content"] is False


def test_probes_run_in_parallel_with_one_api_client_per_thread():
    script = {f"10.1.0.{i}": {"delay": 0.15} for i in range(12)}
    factory, made, tracker = make_factory(script)
    start = time.monotonic()
    observations = run_probes(factory, [probe(h) for h in script], timeout_s=1, workers=4)
    elapsed = time.monotonic() - start
    assert all(o.outcome is Outcome.CONNECTED for o in observations)
    assert 2 <= tracker["peak"] <= 4  # bounded parallelism
    assert elapsed < 12 * 0.15 * 0.6  # clearly faster than one at a time
    assert 1 < len(made) <= 4  # one client per worker thread, not per probe
    assert not tracker["shared_use"]  # no ApiClient ever served two execs at once
    assert all(len(api.api_client.threads) == 1 for api in made)
    assert all(o.latency_s >= 0.15 for o in observations)


def test_a_failing_client_factory_is_an_error_not_a_block():
    def factory():
        raise RuntimeError("no kubeconfig")

    (obs,) = run_probes(factory, [probe("10.0.0.1")], timeout_s=1)
    assert obs.outcome is Outcome.ERROR
    assert "no kubeconfig" in obs.detail


def test_exit_code_from_status_follows_the_client_returncode_rules():
    assert exit_code_from_status(SUCCESS) == (0, "")
    assert exit_code_from_status(exit_status(1)) == (1, "")
    assert exit_code_from_status(exit_status(137)) == (137, "")
    code, why = exit_code_from_status("")
    assert code is None and "exit status" in why
    code, why = exit_code_from_status('{"status":"Failure","message":"pod not running"}')
    assert code is None and why == "pod not running"


def test_pod_events_lists_reasons_oldest_first():
    def event(reason, message, minute, type_="Warning", count=1):
        t = dt.datetime(2026, 1, 1, 12, minute, tzinfo=dt.UTC)
        return SimpleNamespace(
            reason=reason,
            message=message,
            type=type_,
            count=count,
            last_timestamp=t,
            event_time=None,
            first_timestamp=t,
        )

    class Core:
        def list_namespaced_event(self, namespace, field_selector):
            assert (namespace, field_selector) == ("gim", "involvedObject.name=nginx")
            return SimpleNamespace(
                items=[
                    event("Failed", "Error: ErrImagePull", 5, count=3),
                    event("Scheduled", "Successfully assigned gim/nginx", 1, type_="Normal"),
                ]
            )

    text = pod_events(Core(), "gim", "nginx")
    assert text.splitlines() == [
        "Normal Scheduled: Successfully assigned gim/nginx",
        "Warning Failed: Error: ErrImagePull (x3)",
    ]
