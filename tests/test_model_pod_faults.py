"""Issue 17: the model's kubelet for containers that cannot run (``--model-faults no-sctp``,
``no-image=IMAGE``): restart counts and CrashLoopBackOff with the kubelet's back-off, image pull errors,
never Ready; and ``wait_ready`` that says so at once instead of waiting for its timeout."""

from __future__ import annotations

import pytest

from conformance.backends.base import PodsCannotRun
from conformance.backends.model import ModelBackend
from conformance.backends.model_faults import parse_faults
from conformance.errors import UserError
from conformance.netpol.model import ContainerPort
from conformance.netpol.probing import Outcome, Probe
from conformance.probes import agnhost

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}
SCTP_SERVER = agnhost.server_pod(
    "x", "sctp", {"app": "s"}, (ContainerPort(8080), ContainerPort(8081, "SCTP")), run_id="t"
)
TCP_SERVER = agnhost.server_pod("x", "tcp", {"app": "t"}, (ContainerPort(8080),), run_id="t")
CLIENT = agnhost.client_pod("x", "client", {}, run_id="t")


def _container(backend: ModelBackend, name: str) -> dict:
    """The pod's first container status and its phase ({} before the kubelet started it)."""
    (pod,) = [o for o in backend.objects("Pod") if o["metadata"]["name"] == name]
    statuses = pod["status"].get("containerStatuses")
    return statuses[0] | {"phase": pod["status"]["phase"]} if statuses else {}


def test_an_sctp_server_without_the_kernel_module_crash_loops_with_the_kubelets_back_off():
    backend = ModelBackend(faults=parse_faults("no-sctp"))
    backend.apply([NS, SCTP_SERVER, TCP_SERVER, CLIENT])
    restarts: dict[int, float] = {}
    for _ in range(700):  # 700 s, one look a second as a poller would
        backend.clock.sleep(1.0)
        status = _container(backend, "sctp")
        restarts.setdefault(status.get("restartCount", 0), backend.clock.now())
    times = [restarts[n] for n in sorted(restarts)]
    gaps = [round(b - a) for a, b in zip(times[1:], times[2:], strict=False)]
    assert gaps == [10, 20, 40, 80, 160, 300], times  # doubling from 10 s, capped at 300 s
    status = _container(backend, "sctp")
    assert status["phase"] == "Running" and status["ready"] is False
    assert status["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert status["state"]["waiting"]["message"].startswith(
        "back-off 300s restarting failed container=server"
    )
    assert status["lastState"]["terminated"] == {
        "exitCode": 1,
        "reason": "Error",
        # agnhost 2.56's porter, as it logged live on kind (issue 22)
        "message": "I1205 08:27:33.509521       1 log.go:245] Failed to listen SCTP."
        " error:protocol not supported",
    }
    assert sorted(backend.unready_pods(["x"])) == ["x/sctp"], "the TCP server and the client run"
    ip = backend.state(["x"]).pod("x/sctp").ip or ""
    (seen,) = backend.probe([Probe("x/client", "x/sctp", ip, 8080)], 2.0)
    assert seen.outcome is Outcome.REFUSED, "porter serves TCP from the process that exited"


def test_wait_ready_names_the_crash_looping_container_within_seconds():
    backend = ModelBackend(faults=parse_faults("no-sctp"))
    backend.apply([NS, SCTP_SERVER, CLIENT])
    start = backend.clock.now()
    with pytest.raises(PodsCannotRun) as info:
        backend.wait_ready(["x"], 180)
    assert backend.clock.now() - start < 10
    assert str(info.value) == (
        "x/sctp: container server keeps exiting (CrashLoopBackOff, last exit code 1, restarted 1x):"
        " I1205 08:27:33.509521       1 log.go:245] Failed to listen SCTP. error:protocol not supported"
    )


def test_an_image_the_registry_lacks_is_err_image_pull_then_image_pull_back_off_and_named_at_once():
    image = "mirror.local/agnhost:2.52"
    backend = ModelBackend(faults=parse_faults(f"no-image={image}"))
    lost = agnhost.client_pod("x", "lost", {}, image=image, run_id="t")
    backend.apply([NS, lost, CLIENT])
    reasons = []
    for _ in range(40):
        backend.clock.sleep(1.0)
        if status := _container(backend, "lost"):
            reasons.append(status["state"]["waiting"]["reason"])
            assert status["phase"] == "Pending"
    assert reasons[0] == "ErrImagePull" and "ImagePullBackOff" in reasons
    assert reasons.count("ErrImagePull") > 1, "the kubelet tries again after its back-off"
    with pytest.raises(PodsCannotRun) as info:
        backend.wait_ready(["x"], 180)
    assert str(info.value) == (
        f"x/lost: container client cannot pull image '{image}' (ImagePullBackOff): rpc error: code = NotFound"
        f' desc = failed to pull and unpack image "{image}": failed to resolve reference "{image}":'
        f" {image}: not found"
    )


def test_an_unknown_fault_is_one_line_listing_the_faults():
    with pytest.raises(UserError, match="no-sctp, no-image=IMAGE"):
        parse_faults("no-image=")
