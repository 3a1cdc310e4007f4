"""Controls before any verdict is trusted: a baseline with no policy, and a CNI canary (deny-all blocks)."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from conformance.backends.model import ModelBackend
from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.probes.agnhost import AGNHOST_IMAGE
from conformance.suite.controls import NOT_ENFORCED, ControlFailed, run_controls
from conformance.suite.scenario import Timing

FAST = Timing()  # on the model's virtual clock: realistic timeouts cost nothing


class IgnoresPolicies(ModelBackend):
    """A cluster whose CNI does not enforce NetworkPolicy: what would be blocked connects."""

    def detect_cni(self) -> str:
        return "flannel"

    def answer(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        return [
            Observation(o.probe, Outcome.CONNECTED, "connected") if o.outcome is Outcome.BLOCKED else o
            for o in super().answer(probes, timeout_s)
        ]


class ProbesFail(ModelBackend):
    """Probe pods that cannot exec (image not pulled...): every probe is an error."""

    def answer(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        return [Observation(p, Outcome.ERROR, "container not found") for p in probes]


def _namespaces(backend: ModelBackend) -> set[str]:
    """The namespaces not being deleted (deletion is asynchronous: Terminating for a while)."""
    return {name for name, phase in backend.namespace_phases().items() if phase == "Active"}


def test_controls_pass_on_the_model_backend():
    backend = ModelBackend()
    results = run_controls(backend, "abcdef123", FAST, image=AGNHOST_IMAGE)
    assert results.baseline.ok and results.canary.ok
    assert results.baseline.results and all(r.flow.expected.allowed for r in results.baseline.results)
    assert results.canary.results and not any(r.flow.expected.allowed for r in results.canary.results)
    assert all(r.last and r.last.outcome is Outcome.BLOCKED for r in results.canary.results)


def test_controls_leave_no_namespace_behind():
    backend = ModelBackend()
    before = _namespaces(backend)
    run_controls(backend, "abcdef123", FAST, image=AGNHOST_IMAGE)
    assert _namespaces(backend) == before
    backend.clock.sleep(30)  # namespace deletion is asynchronous: Terminating for 10-20 s
    assert set(backend.state([]).namespaces) == before


class RecordsNamespaces(ModelBackend):
    def __init__(self) -> None:
        self.created: list[str] = []
        super().__init__()

    def apply(self, objects) -> None:
        self.created += [o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"]
        super().apply(objects)


def test_suffix_keeps_two_workers_apart():
    backend = RecordsNamespaces()
    run_controls(backend, "abcdef123", FAST, image=AGNHOST_IMAGE, suffix="gw0")
    run_controls(backend, "abcdef123", FAST, image=AGNHOST_IMAGE, suffix="gw1")
    gw0 = {n for n in backend.created if n.endswith("gw0")}
    gw1 = {n for n in backend.created if n.endswith("gw1")}
    assert gw0 and gw1 and not gw0 & gw1


def test_a_cni_that_does_not_enforce_fails_the_canary():
    backend = IgnoresPolicies()
    with pytest.raises(ControlFailed) as failed:
        run_controls(backend, "abcdef123", FAST, image=AGNHOST_IMAGE)
    message = str(failed.value)
    assert message.startswith(NOT_ENFORCED)
    assert "policies deployed but not enforced" in message
    assert "(detected: flannel)" in message
    assert "expected blocked, observed [connected" in message
    assert "control: canary, deny-all: via pod IP, observed" in message
    assert _namespaces(backend) == {"kube-system"}, "the canary namespaces are deleted even on failure"


def test_broken_probe_pods_fail_the_baseline_not_the_canary():
    backend = ProbesFail()
    with pytest.raises(ControlFailed) as failed:
        run_controls(backend, "abcdef123", FAST, image=AGNHOST_IMAGE)
    message = str(failed.value)
    assert message.startswith("baseline failed")
    assert NOT_ENFORCED not in message
    assert "INFRASTRUCTURE ERROR" in message
    assert _namespaces(backend) == {"kube-system"}
