"""Drives rkube with the official Python client, which decodes every
response strictly into its generated OpenAPI models. Prints one line per
step; any exception fails the run. Usage: client_pods_services.py KUBECONFIG"""

import sys
import threading

from kubernetes import client, config, watch

config.load_kube_config(config_file=sys.argv[1])
core = client.CoreV1Api()
ns = "default"

# The watch starts first and must see the pod's ADDED and DELETED events.
seen = []
ready = threading.Event()


def watch_pods():
    w = watch.Watch()
    for event in w.stream(core.list_namespaced_pod, ns, label_selector="app=py",
                          timeout_seconds=30, _request_timeout=60):
        seen.append((event["type"], event["object"].metadata.name))
        ready.set()
        if event["type"] == "DELETED":
            w.stop()


pod = client.V1Pod(
    metadata=client.V1ObjectMeta(name="py-pod", labels={"app": "py"}),
    spec=client.V1PodSpec(containers=[client.V1Container(
        name="main", image="busybox", command=["sleep", "3600"],
        ports=[client.V1ContainerPort(container_port=80, name="http")])]),
)
created = core.create_namespaced_pod(ns, pod)
assert created.metadata.uid, created
assert created.metadata.creation_timestamp is not None
assert created.spec.containers[0].image == "busybox"
print("created pod", created.metadata.name, created.metadata.resource_version)

t = threading.Thread(target=watch_pods)
t.start()

pods = core.list_namespaced_pod(ns, label_selector="app=py")
assert [p.metadata.name for p in pods.items] == ["py-pod"], pods.items
assert pods.metadata.resource_version
print("listed", len(pods.items), "pod(s)")

got = core.read_namespaced_pod("py-pod", ns)
assert got.spec.restart_policy == "Always"
assert got.spec.termination_grace_period_seconds == 30
assert got.status.phase == "Pending"

svc = client.V1Service(
    metadata=client.V1ObjectMeta(name="py-svc"),
    spec=client.V1ServiceSpec(selector={"app": "py"},
                              ports=[client.V1ServicePort(port=80, target_port="http")]),
)
created_svc = core.create_namespaced_service(ns, svc)
assert created_svc.spec.cluster_ip, created_svc.spec
assert created_svc.spec.ports[0].protocol == "TCP"
assert created_svc.spec.ports[0].target_port == "http"
print("created service", created_svc.metadata.name, created_svc.spec.cluster_ip)
services = core.list_namespaced_service(ns)
assert "py-svc" in [s.metadata.name for s in services.items]
all_services = core.list_service_for_all_namespaces()
assert "kubernetes" in [s.metadata.name for s in all_services.items]

patched = core.patch_namespaced_service("py-svc", ns, {"metadata": {"labels": {"tier": "web"}}})
assert patched.metadata.labels == {"tier": "web"}

# A bad request comes back as an ApiException carrying a Status.
try:
    core.create_namespaced_pod(ns, client.V1Pod(metadata=client.V1ObjectMeta(name="Bad_Name"),
                                                spec=pod.spec))
    raise AssertionError("an invalid name was accepted")
except client.exceptions.ApiException as e:
    assert e.status == 422, e
    assert "Invalid" in e.body, e.body
try:
    core.read_namespaced_pod("missing", ns)
    raise AssertionError("a missing pod was found")
except client.exceptions.ApiException as e:
    assert e.status == 404, e

ready.wait(30)
status = core.delete_namespaced_service("py-svc", ns)
print("deleted service", status.status if hasattr(status, "status") else status)
core.delete_namespaced_pod("py-pod", ns, grace_period_seconds=0)
t.join(60)
assert ("ADDED", "py-pod") in seen, seen
assert ("DELETED", "py-pod") in seen, seen
print("watched", seen)
assert core.list_namespaced_pod(ns, label_selector="app=py").items == []
print("ok")
