"""images/build.py's machinery: cached steps, image layers, one-line failures, and the walls' check (with
stand-ins for iptables and docker on PATH)."""

from __future__ import annotations

import io
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

IMAGES = Path(__file__).resolve().parents[1] / "images"
sys.path.insert(0, str(IMAGES))

import build  # noqa: E402
import machine  # noqa: E402
from steps import Runner, Step, StepFailed, digest  # noqa: E402


def _step(name: str, key: str, out: Path, calls: list[str]) -> Step:
    def make(log) -> None:
        calls.append(name)
        out.write_text(key)

    return Step(name, key, lambda _k: out.is_file(), make)


def test_a_step_runs_once_then_is_cached_until_its_inputs_or_outputs_change(tmp_path: Path) -> None:
    out, calls, printed = tmp_path / "out", [], io.StringIO()
    runner = Runner(tmp_path / "state", out=printed)
    runner.run([_step("go:x", "k1", out, calls)])
    runner.run([_step("go:x", "k1", out, calls)])
    assert calls == ["go:x"]
    assert "[ 1/1] go:x: cached" in printed.getvalue()
    runner.run([_step("go:x", "k2", out, calls)])  # an input changed
    out.unlink()
    runner.run([_step("go:x", "k2", out, calls)])  # the output went away
    assert calls == ["go:x", "go:x", "go:x"]


def test_a_failing_command_is_one_line_naming_the_step_and_its_last_words(tmp_path: Path) -> None:
    def make(log) -> None:
        log.run(
            [sys.executable, "-c", "import sys; print('compiling'); sys.exit('go: module refused (403)')"],
            "go:x",
        )

    with pytest.raises(StepFailed) as err:
        Runner(tmp_path, out=io.StringIO()).run([Step("go:x", "k", lambda _k: False, make)])
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith("build step go:x failed:")
    assert "go: module refused (403)" in text and "go:x.log" in text
    assert not (tmp_path / "stamps" / "go:x").exists()  # a failed step is built again next time


def test_digest_follows_file_contents(tmp_path: Path) -> None:
    f = tmp_path / "go.sum"
    f.write_text("a")
    first = digest(f, "go1.24.11")
    f.write_text("b")
    assert digest(f, "go1.24.11") != first
    assert digest(f, "go1.24.12") != digest(f, "go1.24.11")


def test_a_layer_replaces_base_files_keeps_base_folders_and_never_holds_a_path_twice(tmp_path: Path) -> None:
    base = tmp_path / "root"
    (base / "etc/systemd/system/multi-user.target.wants").mkdir(parents=True)
    (base / "etc/journald.conf").write_text("base")
    (base / "etc/systemd/system/multi-user.target.wants/old.service").write_text("x")
    (base / "usr/bin").mkdir(parents=True)
    (base / "usr/bin/tool").write_text("tool")
    layer = build.Layer()
    layer.file("etc/journald.conf", b"laid")
    layer.dir("etc/systemd/system/multi-user.target.wants")
    layer.link(
        "etc/systemd/system/multi-user.target.wants/kubelet.service", "/etc/systemd/system/kubelet.service"
    )
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        layer.write(tar, base, build._node_drop)
    buffer.seek(0)
    with tarfile.open(fileobj=buffer) as tar:
        members = tar.getmembers()
        names = [m.name.removeprefix("./") for m in members]
        journald = tar.extractfile(next(m for m in members if m.name.endswith("journald.conf"))).read()
    assert len(names) == len(set(names))
    assert journald == b"laid"
    assert "usr/bin/tool" in names
    assert "etc/systemd/system/multi-user.target.wants/kubelet.service" in names
    assert "etc/systemd/system/multi-user.target.wants/old.service" not in names  # kind's Dockerfile drops it


@pytest.mark.parametrize(("capbnd", "lacks"), [("000001fffeffffff", True), ("000001ffffffffff", False)])
def test_lacks_sys_resource_reads_the_bounding_set(tmp_path, capbnd, lacks) -> None:
    status = tmp_path / "status"
    status.write_text(f"Name:\tpython\nCapBnd:\t{capbnd}\n")
    assert machine.lacks_sys_resource(status) is lacks


FAKE_IPTABLES = """#!/usr/bin/env python3
import os, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
count = int(open(state + "/drops").read()) if os.path.exists(state + "/drops") else 0
rules = os.path.exists(state + "/rules")
if args[:1] == ["-C"]:
    sys.exit(0 if rules else 1)
if args[:1] == ["-L"]:
    print("Chain DOCKER-USER (1 references)")
    print("    pkts      bytes target     prot opt in     out     source               destination")
    if rules:
        print(f"{count:8d} {count * 60:8d} DROP       all  --  br-+   eth0    0.0.0.0/0            0.0.0.0/0")
    sys.exit(0)
sys.exit(0)
"""

FAKE_IP = """#!/usr/bin/env python3
import sys
if sys.argv[1:4] in (["-4", "route", "show"], ["-6", "route", "show"]):
    print("default via 192.0.2.1 dev eth0")
"""

FAKE_CONNECT = """#!/usr/bin/env python3
import os, sys
state = os.environ["FAKE_STATE"]
mode = os.environ["FAKE_OUTSIDE"]
if mode == "escapes":
    sys.exit(0)
if mode == "dropped":
    count = int(open(state + "/drops").read()) if os.path.exists(state + "/drops") else 0
    open(state + "/drops", "w").write(str(count + 2))
print("TIMEOUT", file=sys.stderr)
sys.exit(1)
"""


@pytest.fixture
def fake_host(tmp_path: Path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (
        ("iptables", FAKE_IPTABLES),
        ("ip6tables", FAKE_IPTABLES),
        ("ip", FAKE_IP),
        ("connect", FAKE_CONNECT),
    ):
        exe = bin_dir / name
        exe.write_text(text)
        exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "state"
    state.mkdir()
    (state / "rules").write_text("")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_STATE", str(state))
    return state


def test_walls_hold_when_the_connect_times_out_and_the_drop_rules_count_it(fake_host, monkeypatch) -> None:
    monkeypatch.setenv("FAKE_OUTSIDE", "dropped")
    said = machine.check_walls(["connect"])
    assert "timed out" in said and "dropped 2 packet(s)" in said


@pytest.mark.parametrize(
    ("outside", "message"),
    [
        ("escapes", "reached 203.0.113.1 outside this machine"),
        ("unseen", "expected a timeout counted by the DROP rules"),  # timed out elsewhere: not our rules
    ],
)
def test_walls_check_fails_when_a_packet_escapes_or_the_rules_did_not_see_it(
    fake_host, monkeypatch, outside, message
) -> None:
    monkeypatch.setenv("FAKE_OUTSIDE", outside)
    with pytest.raises(machine.MachineError, match=message):
        machine.check_walls(["connect"])


def test_walls_check_sends_nothing_while_a_drop_rule_is_missing(fake_host, monkeypatch) -> None:
    (fake_host / "rules").unlink()
    monkeypatch.setenv("FAKE_OUTSIDE", "escapes")
    with pytest.raises(machine.MachineError, match="not probing outside: DROP rule missing"):
        machine.check_walls(["connect"])


FAKE_DOCKER = f"""#!/usr/bin/env python3
import sys
if sys.argv[1:2] == ["info"]:
    print("{machine.RUNTIME}" if "--format" in sys.argv else "Server Version: 20.10.24")
"""


def test_build_on_a_machine_without_go_stops_in_one_line_naming_the_step(
    fake_host, tmp_path, monkeypatch
) -> None:
    docker = tmp_path / "bin" / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    # the stand-ins, python, and nothing else: no go on PATH
    python_dir = tmp_path / "python"
    python_dir.mkdir()
    (python_dir / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{python_dir}")
    monkeypatch.setenv("GIM_NETPOL_CACHE_DIR", str(tmp_path / "cache"))
    run = subprocess.run(
        [sys.executable, str(IMAGES / "build.py")], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.strip() == "images/build.py: build step go:kind failed: go not found on PATH"
    assert "docker engine: running" in run.stdout
    assert "[ 1/" in run.stdout and "go:kind: building" in run.stdout


def test_every_image_file_comes_from_a_build_step() -> None:
    for image in build.c.IMAGES:
        assert build._binary_sources(image)  # raises BadInput for a binary no step makes


def test_the_kubernetes_manifest_pins_every_staging_module_to_the_served_release() -> None:
    text = (IMAGES / "go/kubernetes/go.mod").read_text()
    replaced = [ln.split() for ln in text.splitlines() if "=>" in ln]
    assert len(replaced) >= 30
    assert all(r[2] == r[0] and r[3] == "v0.34.3" for r in replaced)
    assert "require k8s.io/kubernetes v1.34.3" in text
    if subprocess.run(["go", "version"], capture_output=True).returncode == 0:
        # go.sum holds what go.mod needs: `go mod verify` needs the module cache, so only check it is there
        assert (IMAGES / "go/kubernetes/go.sum").stat().st_size > 10_000


def test_a_step_that_meets_a_file_in_its_way_fails_in_one_line(tmp_path: Path) -> None:
    def make(log) -> None:
        (tmp_path / "bin").write_text("a file where the step wants a folder")
        (tmp_path / "bin").mkdir()

    with pytest.raises(StepFailed) as err:
        Runner(tmp_path / "state", out=io.StringIO()).run([Step("go:kind", "k", lambda _k: False, make)])
    assert str(err.value) == f"build step go:kind failed: File exists: {tmp_path / 'bin'}"


def test_a_bad_option_is_one_line_and_exit_2() -> None:
    run = subprocess.run(
        [sys.executable, str(IMAGES / "build.py"), "--bogus"], capture_output=True, text=True
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr == "images/build.py: unrecognized arguments: --bogus (see --help)\n"
