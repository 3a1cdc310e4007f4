"""KindCluster and shared_cluster against fake `kind` and `kubectl` executables that record their argv.

The fakes stand in for the external tools only: they keep a tiny state (which clusters exist, whether
Calico was installed) in a directory, answer the JSON that kubectl would print, and log every call.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from conformance.backends.base import BackendUnavailable
from conformance.backends.factory import run_state_dir
from conformance.backends.kind import (
    NODE_IMAGE,
    REPO_CONFIG,
    CommandFailed,
    KindCluster,
    RunOwner,
    crd_names,
    read_manifest,
    shared_cluster,
)
from conformance.errors import UserError

FAKE_KIND = r"""
import json, os, re, subprocess, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
with open(os.path.join(state, "log.jsonl"), "a") as log:
    log.write(json.dumps({"tool": "kind", "argv": args, "pid": os.getppid()}) + "\n")
clusters_file = os.path.join(state, "clusters.txt")
clusters = open(clusters_file).read().split() if os.path.exists(clusters_file) else []

def flag(name):
    return args[args.index(name) + 1]

def save(names):
    open(clusters_file, "w").write("\n".join(names) + "\n")

def kubeconfig(name):
    # What `kind get kubeconfig` prints: one cluster, one user, context kind-<name>.
    server = os.environ.get("FAKE_API_URL", "https://127.0.0.1:6443")
    ctx = "kind-" + name
    return (
        "apiVersion: v1\nkind: Config\ncurrent-context: %s\n"
        "clusters:\n- name: %s\n  cluster:\n    server: %s\n"
        "users:\n- name: %s\n  user:\n    token: fake-admin-token\n"
        "contexts:\n- name: %s\n  context:\n    cluster: %s\n    user: %s\n"
    ) % (ctx, ctx, server, ctx, ctx, ctx, ctx)

def write_kubeconfig(path=None):
    # Without --kubeconfig, kind writes $KUBECONFIG or ~/.kube/config.
    if path is None:
        path = os.environ.get("KUBECONFIG") or os.path.join(os.environ["HOME"], ".kube", "config")
        os.makedirs(os.path.dirname(path), exist_ok=True)
    open(path, "w").write(kubeconfig(flag("--name")))

def docker(*argv):
    return subprocess.run(["docker", *argv], capture_output=True, text=True)

def node_images():
    # Every node's image: the config's nodes[].image, all replaced by --image
    # (kind pkg/cluster/internal/create/create.go, fixupOptions).
    if "--image" in args:
        return [flag("--image")]
    text = open(flag("--config")).read() if "--config" in args else ""
    return sorted(set(re.findall(r"^\s*image:\s*(\S+)", text, re.M))) or ["kindest/node:v1.36.1"]

def ensure_node_images():
    # kind pkg/cluster/internal/providers/docker/images.go: pullIfNotPresent.
    for image in node_images():
        if docker("inspect", "--type=image", image).returncode == 0:
            continue
        pulled = docker("pull", image)
        if pulled.returncode != 0:
            print("Creating cluster \"%s\" ..." % flag("--name"), file=sys.stderr)
            print(" \u2717 Ensuring node image (%s)" % image.split("@")[0], file=sys.stderr)
            print('ERROR: failed to create cluster: failed to pull image "%s": command "docker pull %s" '
                  "failed with error: exit status 1" % (image, image), file=sys.stderr)
            print("Command Output: " + pulled.stderr.strip(), file=sys.stderr)
            sys.exit(1)

if args[:1] == ["version"]:
    print(os.environ.get("FAKE_KIND_VERSION_OUTPUT", "kind v0.32.0 go1.24.0 linux/amd64"))
elif args[:2] == ["get", "clusters"]:
    if clusters:
        print("\n".join(clusters))
    else:
        print("No kind clusters found.", file=sys.stderr)
elif args[:2] == ["get", "kubeconfig"]:
    if flag("--name") not in clusters:
        print("ERROR: could not locate any control plane nodes for cluster named '%s'" % flag("--name"),
              file=sys.stderr)
        sys.exit(1)
    sys.stdout.write(kubeconfig(flag("--name")))
elif args[:2] == ["get", "nodes"]:
    if flag("--name") in clusters:  # the nodes of clusters/kind-calico.yaml
        print("\n".join(flag("--name") + n for n in ("-control-plane", "-worker", "-worker2")))
    else:
        print("No kind nodes found for cluster \"%s\"." % flag("--name"), file=sys.stderr)
elif args[:2] == ["load", "docker-image"]:
    if flag("--name") not in clusters:
        print("ERROR: no nodes found for cluster \"%s\"" % flag("--name"), file=sys.stderr)
        sys.exit(1)
    for image in [a for a in args[2:] if not a.startswith("-") and a != flag("--name")]:
        if docker("image", "inspect", image).returncode != 0:
            print('ERROR: image: "%s" not present locally' % image, file=sys.stderr)
            sys.exit(1)
        with open(os.path.join(state, "loaded-%s.txt" % flag("--name")), "a") as out:
            out.write(image + "\n")
elif args[:2] == ["create", "cluster"]:
    ensure_node_images()
    if os.environ.get("FAKE_KIND_HANG"):  # nodes started, then stuck (a timeout kills it)
        save(clusters + [flag("--name")])
        import time
        time.sleep(60)
    if os.environ.get("FAKE_KIND_FAIL"):
        print("Creating cluster ...", file=sys.stderr)
        print("ERROR: failed to create cluster: could not find a log line that matches", file=sys.stderr)
        sys.exit(1)
    if flag("--name") in clusters:
        print('ERROR: failed to create cluster: node(s) already exist for a cluster with the name "%s"'
              % flag("--name"), file=sys.stderr)
        sys.exit(1)
    save(clusters + [flag("--name")])
    write_kubeconfig(flag("--kubeconfig") if "--kubeconfig" in args else None)
elif args[:2] == ["export", "kubeconfig"]:
    write_kubeconfig(flag("--kubeconfig"))
elif args[:2] == ["delete", "cluster"]:
    save([c for c in clusters if c != flag("--name")])
    for leftover in ("calico-installed", "owner.json"):
        if os.path.exists(os.path.join(state, leftover)):
            os.remove(os.path.join(state, leftover))
else:
    print("fake kind: unexpected %s" % args, file=sys.stderr)
    sys.exit(2)
"""

FAKE_KUBECTL = r"""
import json, os, sys
state = os.environ["FAKE_STATE"]
args = sys.argv[1:]
stdin = sys.stdin.read() if "-" in args else None
with open(os.path.join(state, "log.jsonl"), "a") as log:
    log.write(json.dumps({"tool": "kubectl", "argv": args, "stdin": stdin}) + "\n")
if args[:2] == ["version", "--client"]:
    version = os.environ.get("FAKE_KUBECTL_VERSION", "v1.34.8")
    print(json.dumps({"clientVersion": {"gitVersion": version}}))
    sys.exit(0)
assert args[0] == "--kubeconfig" and args[2] == "--context", args
cmd = args[4:]
calico = os.path.exists(os.path.join(state, "calico-installed"))
# any enforcer: Calico, or a DaemonSet created from a manifest on stdin (kube-router, kube-network-policies)
installed = calico or any(f.startswith("installed-") for f in os.listdir(state))

def bump(name):
    path = os.path.join(state, name + ".count")
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    open(path, "w").write(str(n))
    return n

def cond(type_, status, message=""):
    return {"type": type_, "status": status, "message": message}

def items(objs):
    print(json.dumps({"apiVersion": "v1", "kind": "List", "items": objs}))

if cmd[:3] == ["get", "crd", "installations.operator.tigera.io"]:
    crd = "customresourcedefinition.apiextensions.k8s.io/installations.operator.tigera.io"
    print(crd if calico else "")
elif cmd[:3] == ["get", "installation", "default"]:
    print("installation.operator.tigera.io/default" if calico else "")
elif cmd[:3] == ["create", "configmap", "gim-netpol-owner"]:
    data = dict(a.split("=", 1)[1].split("=", 1) for a in cmd if a.startswith("--from-literal="))
    open(os.path.join(state, "owner.json"), "w").write(json.dumps(data))
elif cmd[:3] == ["get", "configmap", "gim-netpol-owner"]:
    path = os.path.join(state, "owner.json")
    if os.path.exists(path):
        print(json.dumps({"metadata": {"name": "gim-netpol-owner"}, "data": json.load(open(path))}))
elif cmd[:3] == ["get", "configmap", "kubeadm-config"]:
    subnet = os.environ.get("FAKE_POD_SUBNET", "192.168.0.0/16")
    config = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nnetworking:\n"
    config += "  podSubnet: %s\n  serviceSubnet: 10.96.0.0/16\n" % subnet
    print(json.dumps({"metadata": {"name": "kubeadm-config"}, "data": {"ClusterConfiguration": config}}))
elif cmd[:2] == ["create", "-f"]:
    source = cmd[2]
    if os.environ.get("FAKE_CREATE_STDERR") and source == "-":
        print(os.environ["FAKE_CREATE_STDERR"], file=sys.stderr)
        sys.exit(1)
    done = os.path.join(state, "created-" + os.path.basename(source))
    if source != "-" and os.path.exists(done):  # kubectl create of objects that exist
        print('Error from server (AlreadyExists): error when creating "%s": '
              'customresourcedefinitions.apiextensions.k8s.io "x.operator.tigera.io" already exists'
              % source, file=sys.stderr)
        sys.exit(1)
    if source != "-":
        open(done, "w").write("yes")
    if source == "-" and "kind: DaemonSet" in stdin:  # an enforcer's manifest
        import re
        for name in re.findall(r"kind: DaemonSet\nmetadata:\n(?:  .*\n)*?  name: (\S+)", stdin):
            open(os.path.join(state, "installed-" + name), "w").write(stdin)
    elif source == "-":
        open(os.path.join(state, "custom-resources.yaml"), "w").write(stdin)
        open(os.path.join(state, "calico-installed"), "w").write("yes")
    elif "://" not in source and not os.path.exists(source):
        print("error: the path \"%s\" does not exist" % source, file=sys.stderr)
        sys.exit(1)
elif cmd[:1] == ["wait"]:
    pass
elif cmd[:2] == ["get", "nodes"]:
    ready = installed and bump("nodes") >= 2
    msg = "" if ready else "container runtime network not ready: cni plugin not initialized"
    names = ["gim-control-plane", "gim-worker", "gim-worker2"]
    ready_cond = cond("Ready", "True" if ready else "False", msg)
    # kube-controller-manager gives each registered node a pod CIDR of the podSubnet
    items([{"metadata": {"name": n}, "spec": {"podCIDR": "192.168.%d.0/24" % i},
            "status": {"conditions": [ready_cond],
                       "addresses": [{"type": "InternalIP", "address": "172.18.0.%d" % (i + 2)}]}}
           for i, n in enumerate(names)])
elif cmd[:2] == ["get", "daemonset"]:  # one, by name: an enforcer's
    name = cmd[2]
    if not os.path.exists(os.path.join(state, "installed-" + name)):
        print("")
    elif "name" in cmd:
        print("daemonset.apps/" + name)
    else:
        ready = 3 if bump("ds-" + name) >= 2 else 1
        print(json.dumps({"metadata": {"name": name},
                          "status": {"desiredNumberScheduled": 3, "numberReady": ready}}))
elif cmd[:2] == ["get", "tigerastatus"]:
    if not installed:
        err = 'error: the server doesn\'t have a resource type "tigerastatus"'
        print(err, file=sys.stderr)
        sys.exit(1)
    if os.environ.get("FAKE_TIGERA_STUCK"):
        conds = [cond("Available", "False"), cond("Degraded", "True", "Failed to pull image calico/node")]
    elif bump("tigera") < 2:
        progressing = cond("Progressing", "True", "DaemonSet calico-node not available")
        conds = [cond("Available", "False"), progressing]
    else:
        conds = [cond("Available", "True"), cond("Progressing", "False"), cond("Degraded", "False")]
    statuses = [{"metadata": {"name": "calico"}, "status": {"conditions": conds}}]
    if cmd[2:3] == ["calico"]:  # one of them, by name
        print(json.dumps(statuses[0]))
        sys.exit(0)
    for name in os.environ.get("FAKE_TIGERA_OTHERS", "ippools").split():
        other = [cond("Available", "False"), cond("Progressing", "True", "waiting for " + name)]
        ok = [cond("Available", "True")]
        conds = other if "stuck" in name else ok
        statuses.append({"metadata": {"name": name}, "status": {"conditions": conds}})
    items(statuses)
elif cmd[:2] == ["get", "daemonsets"]:
    names = [("calico-system", "calico-node"), ("kube-system", "kube-proxy")]
    if os.environ.get("FAKE_KINDNET"):
        names.append(("kube-system", "kindnet"))
    items([{"metadata": {"namespace": ns, "name": n}} for ns, n in names])
elif cmd[:2] == ["get", "pods"]:
    count = int(os.environ.get("FAKE_CALICO_NODES", "3"))
    items([{"metadata": {"name": "calico-node-%d" % i},
            "status": {"phase": "Running", "conditions": [cond("Ready", "True")]}} for i in range(count)])
else:
    print("fake kubectl: unexpected %s" % cmd, file=sys.stderr)
    sys.exit(2)
"""


# docker, as far as kind and the suite use it: `info`, `inspect --type=image` / `image inspect` (a
# reference with a digest matches the image's repo digests, one without its tags), `pull` (only with
# FAKE_REGISTRY, a JSON {"name:tag": "sha256:..."}: without it no registry is reachable), `save` and
# `load`. As in Docker's classic image store, an image pulled by tag gets its tag and repo digest, one
# brought in with `docker load` only its tags (a saved image's manifest.json keeps RepoTags, no digest).
# The store is FAKE_DOCKER_STATE (a folder; default FAKE_STATE): one per machine.
FAKE_DOCKER = r"""
import json, os, sys
state = os.environ.get("FAKE_DOCKER_STATE") or os.environ["FAKE_STATE"]
args = sys.argv[1:]
with open(os.path.join(os.environ["FAKE_STATE"], "log.jsonl"), "a") as log:
    log.write(json.dumps({"tool": "docker", "argv": args}) + "\n")
store = os.path.join(state, "docker-images.json")
images = json.load(open(store)) if os.path.exists(store) else []

def parse(ref):
    name, _, digest = ref.partition("@")
    tag = None
    if ":" in name.rsplit("/", 1)[-1]:
        name, tag = name.rsplit(":", 1)
    return name, tag, digest

def find(ref):
    name, tag, digest = parse(ref)
    for image in images:
        if digest and name + "@" + digest in image["digests"]:
            return image
        if not digest and "%s:%s" % (name, tag or "latest") in image["tags"]:
            return image
    return None

def keep():
    json.dump(images, open(store, "w"))

def no_such(ref):
    print("Error response from daemon: No such image: " + ref, file=sys.stderr)
    sys.exit(1)

if args[:1] == ["info"]:
    print("27.3.1")
elif args[:2] == ["inspect", "--type=image"] or args[:2] == ["image", "inspect"]:
    refs = [a for a in args[2:] if not a.startswith("-") and not a.startswith("{{")]
    found = [find(r) for r in refs]
    for ref, image in zip(refs, found):
        if image is None:
            no_such(ref)
    if "--format" in args:
        for image in found:
            print(json.dumps(image["digests"]) if "RepoDigests" in args[args.index("--format") + 1]
                  else image["id"])
    else:
        listed = [{"Id": i["id"], "RepoTags": i["tags"], "RepoDigests": i["digests"]} for i in found]
        print(json.dumps(listed))
elif args[:1] == ["pull"]:
    ref = args[1]
    if "FAKE_REGISTRY" not in os.environ:
        print('Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup '
              "registry-1.docker.io on 127.0.0.53:53: server misbehaving", file=sys.stderr)
        sys.exit(1)
    registry = json.loads(os.environ["FAKE_REGISTRY"])
    name, tag, digest = parse(ref)
    published = registry.get("%s:%s" % (name, tag or "latest"))
    if digest and digest not in [d for k, d in registry.items() if parse(k)[0] == name]:
        published = None
    if published is None:
        print("Error response from daemon: manifest for %s not found: manifest unknown" % ref,
              file=sys.stderr)
        sys.exit(1)
    image = find(ref) or {"id": "sha256:" + published[-12:] * 5, "tags": [], "digests": []}
    if image not in images:
        images.append(image)
    if not digest:  # pulled by tag: tagged; by digest: only the digest is recorded
        image["tags"] = sorted(set(image["tags"]) | {"%s:%s" % (name, tag or "latest")})
    image["digests"] = sorted(set(image["digests"]) | {name + "@" + (digest or published)})
    keep()
    print("Status: Downloaded newer image for " + ref)
elif args[:1] == ["save"]:
    out = args[args.index("-o") + 1]
    refs = [a for a in args[1:] if a not in ("-o", out)]
    saved = []
    for ref in refs:
        image = find(ref)
        if image is None:
            no_such(ref)
        name, tag, digest = parse(ref)
        saved.append({"id": image["id"], "RepoTags": [] if digest else ["%s:%s" % (name, tag or "latest")]})
    json.dump(saved, open(out, "w"))
elif args[:1] == ["exec"]:  # into a kind node: recorded with what it was given on stdin
    with open(os.path.join(os.path.dirname(store), "docker-exec.jsonl"), "a") as out:
        out.write(json.dumps({"argv": args[1:], "stdin": sys.stdin.read() if "-i" in args else None}) + "\n")
    if os.environ.get("FAKE_NFT_NO_QUEUE") and " queue " in args[-1]:  # a kernel without nft_queue
        print("Error: No such file or directory; did you mean chain 'INPUT'?", file=sys.stderr)
        print("add rule inet gim-netpol-probe probe queue num 98 bypass", file=sys.stderr)
        sys.exit(1)
elif args[:1] == ["update"]:  # docker update --memory M --memory-swap M CONTAINER...
    with open(os.path.join(os.path.dirname(store), "docker-update.jsonl"), "a") as out:
        out.write(json.dumps(args[1:]) + "\n")
    print("\n".join(a for a in args[1:] if not a.startswith("-") and a != args[args.index("--memory") + 1]))
elif args[:1] == ["load"]:
    for entry in json.load(open(args[args.index("-i") + 1])):
        image = next((i for i in images if i["id"] == entry["id"]), None)
        if image is None:
            image = {"id": entry["id"], "tags": [], "digests": []}  # no repo digest: classic store
            images.append(image)
        image["tags"] = sorted(set(image["tags"]) | set(entry["RepoTags"]))
        print("Loaded image: " + ", ".join(entry["RepoTags"]))
    keep()
else:
    print("fake docker: unexpected %s" % args, file=sys.stderr)
    sys.exit(2)
"""

# What a registry serves when one is reachable: the pinned node image, by the digest of NODE_IMAGE.
PINNED_TAG, PINNED_DIGEST = NODE_IMAGE.split("@")
REGISTRY = json.dumps({PINNED_TAG: PINNED_DIGEST})


def install_fakes(bindir: Path) -> None:
    bindir.mkdir(parents=True, exist_ok=True)
    for name, body in (("kind", FAKE_KIND), ("kubectl", FAKE_KUBECTL), ("docker", FAKE_DOCKER)):
        path = bindir / name
        path.write_text(f"#!{sys.executable} -S\n{body}")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def fake_machine(tmp_path: Path, monkeypatch, *, alone: bool = False) -> Path:
    """The fake kind, kubectl and docker in ``tmp_path/bin``, first on PATH (``alone``: the only things on
    it), their state in ``tmp_path/state`` (returned): a docker with no image and no registry."""
    bindir = tmp_path / "bin"
    install_fakes(bindir)
    state = tmp_path / "state"
    state.mkdir()
    monkeypatch.setenv("PATH", str(bindir) if alone else f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_STATE", str(state))
    monkeypatch.delenv("FAKE_REGISTRY", raising=False)
    monkeypatch.delenv("FAKE_DOCKER_STATE", raising=False)
    return state


@pytest.fixture
def fakes(tmp_path, monkeypatch):
    state = fake_machine(tmp_path, monkeypatch)
    monkeypatch.setenv("FAKE_REGISTRY", REGISTRY)  # the node image can be pulled
    return state


def calls(state: Path, tool: str | None = None) -> list[dict]:
    log = state / "log.jsonl"
    entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return [e for e in entries if tool is None or e["tool"] == tool]


def manifests_dir(tmp_path: Path, cidr: str = "10.10.0.0/16") -> Path:
    d = tmp_path / "calico"
    d.mkdir(exist_ok=True)
    (d / "operator-crds.yaml").write_text("# CRDs\n")
    (d / "tigera-operator.yaml").write_text("# operator\n")
    (d / "custom-resources.yaml").write_text(
        "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n"
        f"  calicoNetwork:\n    ipPools:\n    - name: default-ipv4-ippool\n      cidr: {cidr}\n"
        "---\napiVersion: operator.tigera.io/v1\nkind: APIServer\nmetadata:\n  name: default\nspec: {}\n"
    )
    return d


def make_cluster(tmp_path: Path, **kwargs) -> KindCluster:
    defaults = dict(name="gim", config_path=REPO_CONFIG, kubeconfig_path=tmp_path / "kubeconfig", poll_s=0.01)
    if "calico_manifests_dir" not in kwargs:
        defaults["calico_manifests_dir"] = manifests_dir(tmp_path)
    return KindCluster(**{**defaults, **kwargs})


def test_create_follows_kind_and_the_calico_quickstart_in_order(fakes, tmp_path):
    cluster = make_cluster(tmp_path)
    cluster.create()
    kubeconfig = str(tmp_path / "kubeconfig")
    kind_calls = [c["argv"] for c in calls(fakes, "kind")]
    assert kind_calls == [
        ["get", "clusters"],
        [
            "create",
            "cluster",
            "--name",
            "gim",
            "--config",
            str(REPO_CONFIG),
            "--image",
            NODE_IMAGE,
            "--kubeconfig",
            kubeconfig,
        ],
    ]
    kubectl = [c["argv"] for c in calls(fakes, "kubectl")]
    assert all(argv[:4] == ["--kubeconfig", kubeconfig, "--context", "kind-gim"] for argv in kubectl)
    creates = [argv[4:] for argv in kubectl if argv[4:6] == ["create", "-f"]]
    d = tmp_path / "calico"
    assert creates == [
        ["create", "-f", str(d / "operator-crds.yaml")],
        ["create", "-f", str(d / "tigera-operator.yaml")],
        ["create", "-f", "-"],
    ]
    # The IPPool is the kind podSubnet, not the cidr the manifest folder came with.
    created = list(yaml.safe_load_all((fakes / "custom-resources.yaml").read_text()))
    assert created[0]["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] == "192.168.0.0/16"
    assert [d["kind"] for d in created] == ["Installation"]  # APIServer, Goldmane, Whisker: not created
    verbs = [argv[4:6] for argv in kubectl]
    # Explicit waits: nodes polled until Ready, then Calico Available, then the enforcer check.
    assert verbs.count(["get", "nodes"]) >= 2
    assert verbs.index(["get", "tigerastatus"]) > verbs.index(["get", "nodes"])
    assert verbs[-2:] == [["get", "daemonsets"], ["get", "pods"]]
    assert cluster.created


def test_custom_resources_are_created_once_the_crd_of_each_of_their_kinds_is_established(fakes, tmp_path):
    make_cluster(tmp_path).create()
    kubectl = [c["argv"][4:] for c in calls(fakes, "kubectl")]
    waits = [argv for argv in kubectl if argv[0] == "wait"]
    assert len(waits) == 1
    assert "--for=condition=Established" in waits[0]
    crds = {a for a in waits[0] if a.startswith("crd/")}
    # Only the Installation of custom-resources.yaml is created; tigerastatus is read later.
    assert crds == {"crd/installations.operator.tigera.io", "crd/tigerastatuses.operator.tigera.io"}
    assert kubectl.index(waits[0]) < kubectl.index(["create", "-f", "-"])
    assert kubectl.index(waits[0]) > kubectl.index(
        ["create", "-f", str(tmp_path / "calico" / "tigera-operator.yaml")]
    )


# The kinds of projectcalico/calico v3.31 manifests/custom-resources.yaml.
UPSTREAM_V331_KINDS = """
apiVersion: operator.tigera.io/v1
kind: Installation
metadata: {name: default}
---
apiVersion: operator.tigera.io/v1
kind: APIServer
metadata: {name: default}
---
apiVersion: operator.tigera.io/v1
kind: Goldmane
metadata: {name: default}
---
apiVersion: operator.tigera.io/v1
kind: Whisker
metadata: {name: default}
"""


def test_crd_names_of_the_v331_custom_resources():
    assert crd_names(UPSTREAM_V331_KINDS) == [
        "apiservers.operator.tigera.io",
        "goldmanes.operator.tigera.io",
        "installations.operator.tigera.io",
        "tigerastatuses.operator.tigera.io",
        "whiskers.operator.tigera.io",
    ]
    assert crd_names("apiVersion: v1\nkind: ConfigMap\n") == ["tigerastatuses.operator.tigera.io"]


def test_reuse_exports_the_kubeconfig_into_a_folder_that_does_not_exist_yet(fakes, tmp_path):
    (fakes / "clusters.txt").write_text("gim\n")
    (fakes / "calico-installed").write_text("yes")
    kubeconfig = tmp_path / "new" / "dir" / "kubeconfig"
    make_cluster(tmp_path, reuse=True, kubeconfig_path=kubeconfig).create()
    assert kubeconfig.is_file()


def test_a_reused_cluster_is_not_deleted_when_the_run_ends(fakes, tmp_path):
    (fakes / "clusters.txt").write_text("gim\n")
    (fakes / "calico-installed").write_text("yes")
    with shared_cluster(make_cluster(tmp_path, reuse=True), tmp_path / "shared", "run1"):
        pass
    assert not [c for c in calls(fakes, "kind") if c["argv"][0] == "delete"]
    assert (fakes / "clusters.txt").read_text().split() == ["gim"]
    # ...while a cluster the run created is deleted by the last to leave.
    (fakes / "clusters.txt").write_text("")
    with shared_cluster(make_cluster(tmp_path), tmp_path / "shared2", "run2"):
        pass
    assert [c["argv"][:2] for c in calls(fakes, "kind")][-1] == ["delete", "cluster"]


def test_delete_removes_the_cluster_unless_kept(fakes, tmp_path):
    cluster = make_cluster(tmp_path)
    cluster.create()
    make_cluster(tmp_path, keep=True).delete()
    assert not [c for c in calls(fakes, "kind") if c["argv"][0] == "delete"]
    cluster.delete()
    assert calls(fakes, "kind")[-1]["argv"] == [
        "delete",
        "cluster",
        "--name",
        "gim",
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
    ]
    assert (fakes / "clusters.txt").read_text().split() == []


def test_reuse_keeps_an_existing_cluster_and_its_calico(fakes, tmp_path):
    (fakes / "clusters.txt").write_text("other\ngim\n")
    (fakes / "calico-installed").write_text("yes")
    make_cluster(tmp_path, reuse=True).create()
    kind_calls = [c["argv"] for c in calls(fakes, "kind")]
    assert ["get", "clusters"] in kind_calls
    assert not [a for a in kind_calls if a[0] == "create"]
    assert [
        "export",
        "kubeconfig",
        "--name",
        "gim",
        "--kubeconfig",
        str(tmp_path / "kubeconfig"),
    ] in kind_calls
    assert not [c for c in calls(fakes, "kubectl") if c["argv"][4] == "create"]


def test_reuse_finishes_an_install_that_was_interrupted_before_the_custom_resources(fakes, tmp_path):
    (fakes / "clusters.txt").write_text("gim\n")
    (fakes / "created-operator-crds.yaml").write_text("yes")  # an earlier run stopped after these
    (fakes / "created-tigera-operator.yaml").write_text("yes")
    make_cluster(tmp_path, reuse=True).create()
    assert (fakes / "calico-installed").exists()
    created = list(yaml.safe_load_all((fakes / "custom-resources.yaml").read_text()))
    assert created[0]["kind"] == "Installation"


def test_a_create_that_fails_for_another_reason_still_fails(fakes, tmp_path):
    cluster = make_cluster(tmp_path)
    (tmp_path / "calico" / "tigera-operator.yaml").unlink()  # kubectl: the path does not exist
    with pytest.raises(CommandFailed, match="does not exist"):
        cluster.install_calico()


def test_an_existing_cluster_without_reuse_is_not_touched(fakes, tmp_path):
    (fakes / "clusters.txt").write_text("gim\n")
    with pytest.raises(BackendUnavailable) as info:
        make_cluster(tmp_path).create()
    assert "--reuse-cluster" in str(info.value) and "kind delete cluster --name gim" in str(info.value)
    assert "not created by this suite" in str(info.value)
    assert not [c for c in calls(fakes) if c["argv"][0] in ("create", "delete")]
    assert not [c for c in calls(fakes, "kubectl") if c["argv"][4] in ("create", "delete")]


def test_kindnet_present_is_refused(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KINDNET", "1")
    with pytest.raises(BackendUnavailable, match="kindnet is installed"):
        make_cluster(tmp_path).create()


def test_calico_node_missing_on_a_node_is_refused(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_CALICO_NODES", "2")
    with pytest.raises(BackendUnavailable, match="calico-node is running and Ready on 2 of 3 nodes"):
        make_cluster(tmp_path).create()


def test_calico_never_available_fails_at_the_deadline_with_its_status(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TIGERA_STUCK", "1")
    with pytest.raises(BackendUnavailable) as info:
        make_cluster(tmp_path, calico_timeout_s=0.3).create()
    message = str(info.value)
    assert "every tigerastatus Available not reached within 0.3s" in message
    assert "Failed to pull image calico/node" in message
    assert "get pods -n calico-system" in message


def test_a_failing_command_names_itself_its_stderr_and_a_hint(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KIND_FAIL", "1")
    with pytest.raises(CommandFailed) as info:
        make_cluster(tmp_path).create()
    message = str(info.value)
    assert message.startswith("`kind create cluster --name gim")
    assert "exited 1" in message and "could not find a log line that matches" in message
    assert "hint:" in message and "docker" in message


def test_a_missing_manifest_folder_file_is_a_user_error(tmp_path):
    d = manifests_dir(tmp_path)
    (d / "operator-crds.yaml").unlink()
    with pytest.raises(UserError, match="operator-crds.yaml"):
        make_cluster(tmp_path, calico_manifests_dir=d)


def test_without_a_folder_the_pinned_release_urls_are_used(tmp_path):
    cluster = make_cluster(tmp_path, calico_manifests_dir=None, calico_version="v3.31.2")
    assert cluster.manifest_source("tigera-operator.yaml") == (
        "https://raw.githubusercontent.com/projectcalico/calico/v3.31.2/manifests/tigera-operator.yaml"
    )


def test_read_manifest_reads_paths_and_urls(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("kind: X\n")
    assert read_manifest(str(path)) == "kind: X\n"
    assert read_manifest(path.as_uri()) == "kind: X\n"


# --- shared_cluster across processes (as pytest-xdist workers) -------------------------------------


def _worker(tmp: str, shared: str, barrier, results) -> None:
    tmp_path = Path(tmp)
    cluster = KindCluster(
        "gim",
        REPO_CONFIG,
        calico_manifests_dir=tmp_path / "calico",
        kubeconfig_path=Path(shared) / "kubeconfig",
        poll_s=0.01,
    )
    try:
        with shared_cluster(cluster, shared, "run1"):
            results.put(("in", os.getpid()))
            if barrier is not None:
                barrier.wait(timeout=30)  # both workers hold the cluster at the same time
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def run_workers(tmp_path: Path, count: int, with_barrier: bool) -> list[tuple[str, object]]:
    manifests_dir(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(count) if with_barrier else None
    results = ctx.Queue()
    shared = tmp_path / "shared"
    procs = [
        ctx.Process(target=_worker, args=(str(tmp_path), str(shared), barrier, results)) for _ in range(count)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    return [results.get(timeout=5) for _ in range(count)]


def test_two_workers_share_one_cluster_created_once_and_deleted_once(fakes, tmp_path):
    outcomes = run_workers(tmp_path, 2, with_barrier=True)
    assert [kind for kind, _ in outcomes] == ["in", "in"]
    kind_calls = [c["argv"] for c in calls(fakes, "kind")]
    assert sum(a[:2] == ["create", "cluster"] for a in kind_calls) == 1
    assert sum(a[:2] == ["delete", "cluster"] for a in kind_calls) == 1
    assert kind_calls[-1][:2] == ["delete", "cluster"]  # deleted by the last to leave
    assert (fakes / "clusters.txt").read_text().split() == []


def test_a_failed_creation_is_not_retried_by_the_other_worker(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KIND_FAIL", "1")
    outcomes = run_workers(tmp_path, 2, with_barrier=False)
    assert [kind for kind, _ in outcomes] == ["error", "error"]
    messages = {str(m) for _, m in outcomes}
    assert all("could not find a log line that matches" in m for m in messages)
    kind_calls = [c["argv"] for c in calls(fakes, "kind")]
    assert sum(a[:2] == ["create", "cluster"] for a in kind_calls) == 1


# --- issue 13: the default command cannot poison itself ---------------------------------------------


def test_item1_a_failed_creation_does_not_fail_the_next_run(fakes, tmp_path, monkeypatch):
    """Two runs without xdist: the first fails to create (docker out of memory), the second creates."""
    basetemps = tmp_path / "pytest-of-user"
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.setenv("FAKE_KIND_FAIL", "1")
    first = run_state_dir(basetemps / "pytest-1", "aaaa1111")
    with pytest.raises(CommandFailed), shared_cluster(make_cluster(tmp_path), first, "aaaa1111"):
        pass
    monkeypatch.delenv("FAKE_KIND_FAIL")
    second = run_state_dir(basetemps / "pytest-2", "bbbb2222")
    assert second != first
    with shared_cluster(make_cluster(tmp_path), second, "bbbb2222") as cluster:
        assert cluster.created
    assert sum(c["argv"][:2] == ["create", "cluster"] for c in calls(fakes, "kind")) == 2


def test_item1_xdist_workers_of_one_run_share_one_state_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    gw0 = run_state_dir(tmp_path / "pytest-7" / "popen-gw0", "cafe0001")
    gw1 = run_state_dir(tmp_path / "pytest-7" / "popen-gw1", "cafe0001")
    assert gw0 == gw1 == tmp_path / "pytest-7" / "gim-netpol-run-cafe0001"


def test_item1_a_state_left_by_another_run_in_the_same_folder_is_not_replayed(fakes, tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    stale = {"run": "old00000", "users": 1, "ready": False, "created": False, "error": "docker OOM"}
    (shared / "kind-gim.json").write_text(json.dumps(stale))
    with shared_cluster(make_cluster(tmp_path), shared, "new00000") as cluster:
        assert cluster.created


def test_item2_a_cluster_records_the_run_that_created_it(fakes, tmp_path):
    owner = RunOwner("run12345", "host-a", 4242, keep=True)
    make_cluster(tmp_path, owner=owner).create()
    recorded = json.loads((fakes / "owner.json").read_text())
    assert recorded == {"run": "run12345", "host": "host-a", "pid": "4242", "keep": "true"}


def _dead_pid() -> int:
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=int)
    p.start()
    p.join()
    return p.pid


def test_item2_a_cluster_left_by_a_killed_run_is_deleted_and_created_again(fakes, tmp_path):
    """SIGKILL: the run never reached its cleanup. The next run must not reuse it (its kubeconfig may be
    stale, it is not deleted by anyone): it sees the owner is gone and replaces the cluster."""
    import socket

    killed = RunOwner("killed01", socket.gethostname(), _dead_pid(), keep=False)
    with shared_cluster(make_cluster(tmp_path, owner=killed), tmp_path / "run1", "killed01"):
        pass  # ...pretend: the cluster exists and is recorded; now simulate the kill by recreating it
    (fakes / "clusters.txt").write_text("gim\n")
    (fakes / "owner.json").write_text(json.dumps(killed.data()))
    (fakes / "calico-installed").write_text("yes")
    (fakes / "log.jsonl").unlink()
    nxt = make_cluster(tmp_path, owner=RunOwner.this_run("next0001", keep=False))
    with shared_cluster(nxt, tmp_path / "run2", "next0001") as cluster:
        assert cluster.created
        assert any("killed01" in note for note in cluster.notes)
    kind_calls = [c["argv"][:2] for c in calls(fakes, "kind")]
    assert kind_calls.index(["delete", "cluster"]) < kind_calls.index(["create", "cluster"])
    assert kind_calls[-1] == ["delete", "cluster"]  # ...and the new run deletes what it made


def test_item2_a_cluster_of_a_concurrent_run_is_refused_naming_its_owner(fakes, tmp_path):
    (fakes / "clusters.txt").write_text("gim\n")
    alive = RunOwner.this_run("other001", keep=False)  # this very process: alive
    (fakes / "owner.json").write_text(json.dumps(alive.data()))
    with pytest.raises(BackendUnavailable) as info:
        make_cluster(tmp_path).create()
    message = str(info.value)
    assert "created by gim-netpol run other001" in message and "running" in message
    assert "another --cluster-name" in message
    assert not [c for c in calls(fakes, "kind") if c["argv"][0] in ("create", "delete")]


def test_item3_a_creation_that_times_out_deletes_the_nodes_it_started(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_KIND_HANG", "1")
    with pytest.raises(CommandFailed) as info:
        make_cluster(tmp_path, create_timeout_s=1.0).create()
    assert "did not finish within 1s" in str(info.value)
    assert "the nodes it started were deleted" in str(info.value)
    assert (fakes / "clusters.txt").read_text().split() == []


def test_item3_a_creation_refused_because_the_name_exists_deletes_nothing(fakes, tmp_path):
    # Another run created the cluster between our `kind get clusters` and our `kind create cluster`.
    cluster = make_cluster(tmp_path)
    (fakes / "clusters.txt").write_text("gim\n")
    with pytest.raises(CommandFailed, match="already exist"):
        cluster._create_cluster()
    assert not [c for c in calls(fakes, "kind") if c["argv"][0] == "delete"]
    assert (fakes / "clusters.txt").read_text().split() == ["gim"]


def test_item5_reuse_checks_for_kindnet_before_installing_anything(fakes, tmp_path, monkeypatch):
    (fakes / "clusters.txt").write_text("gim\n")
    monkeypatch.setenv("FAKE_KINDNET", "1")
    with pytest.raises(BackendUnavailable, match="kindnet is installed"):
        make_cluster(tmp_path, reuse=True).create()
    assert not [c for c in calls(fakes, "kubectl") if c["argv"][4] == "create"]


def test_item5_the_ippool_is_the_pod_cidr_of_the_cluster_not_of_the_repo_config(fakes, tmp_path, monkeypatch):
    (fakes / "clusters.txt").write_text("gim\n")
    monkeypatch.setenv("FAKE_POD_SUBNET", "10.244.0.0/16")  # kubeadm-config of a cluster made elsewhere
    make_cluster(tmp_path, reuse=True).create()
    created = list(yaml.safe_load_all((fakes / "custom-resources.yaml").read_text()))
    assert created[0]["spec"]["calicoNetwork"]["ipPools"][0]["cidr"] == "10.244.0.0/16"


def test_item6_every_tigerastatus_is_awaited(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TIGERA_OTHERS", "ippools stuck-apiserver")
    with pytest.raises(BackendUnavailable) as info:
        make_cluster(tmp_path, calico_timeout_s=0.3).create()
    assert "stuck-apiserver Progressing" in str(info.value)


def test_item7_a_real_error_next_to_already_exists_lines_is_not_hidden(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "FAKE_CREATE_STDERR",
        'Error from server (AlreadyExists): error when creating "-": installations.operator.tigera.io '
        '"default" already exists\n'
        'error: resource mapping not found for name: "default" namespace: "" from "-": no matches for '
        'kind "Goldmane" in version "operator.tigera.io/v1"\nensure CRDs are installed first',
    )
    with pytest.raises(CommandFailed, match="no matches for kind"):
        make_cluster(tmp_path).create()


def test_item7_only_already_exists_lines_are_an_install_that_was_done_before(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv(
        "FAKE_CREATE_STDERR",
        "Warning: resource is deprecated\n"
        'Error from server (AlreadyExists): error when creating "-": installations.operator.tigera.io '
        '"default" already exists',
    )
    cluster = make_cluster(tmp_path)
    cluster.kubeconfig_path.write_text("")
    cluster._create("-", input_text="kind: Installation\n")  # no exception


def test_item9_crd_names_pluralise_like_the_crds(tmp_path):
    text = "apiVersion: policy.example.io/v1\nkind: NetworkPolicy\n---\napiVersion: x.io/v1\nkind: Box\n"
    assert crd_names(text) == [
        "boxes.x.io",
        "networkpolicies.policy.example.io",
        "tigerastatuses.operator.tigera.io",
    ]


def test_item9_calico_timeout_hints_at_the_inotify_limits(fakes, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TIGERA_STUCK", "1")
    with pytest.raises(BackendUnavailable) as info:
        make_cluster(tmp_path, calico_timeout_s=0.2).create()
    message = str(info.value)
    assert "too many open files" in message and "fs.inotify.max_user_instances=512" in message
    assert "image pulls?" not in message
