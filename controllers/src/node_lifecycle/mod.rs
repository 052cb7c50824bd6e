//! The node lifecycle controller: marks a node whose kubelet stopped
//! renewing its Lease for longer than the grace period `Ready=Unknown`,
//! keeps the `unreachable`/`not-ready` taints in step with the Ready
//! condition, and evicts pods from `NoExecute`-tainted nodes once their
//! tolerations run out (their controllers then replace them elsewhere).

pub mod logic;

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, DeleteParams, Patch, PatchParams, ResourceExt};
use kube::runtime::reflector::ObjectRef;
use serde_json::json;

use crate::events::Events;

const PERIOD: Duration = Duration::from_secs(1);

pub async fn run(client: kube::Client, grace: Duration) {
    let (nodes, node_task) = crate::cache::store::<Node>(&client);
    let (leases, lease_task) = crate::cache::store::<Lease>(&client);
    let (pods, pod_task) = crate::cache::store::<Pod>(&client);
    let events = Events::new(client.clone(), "node-controller");
    let grace = SignedDuration::try_from(grace).unwrap_or(SignedDuration::from_secs(40));
    // Nodes seen at start get a full grace period from then: a manager
    // starting after an outage must not evict everything at once.
    let started = Timestamp::now();
    loop {
        tokio::time::sleep(PERIOD).await;
        if nodes.wait_until_ready().await.is_err() {
            break;
        }
        let now = Timestamp::now();
        let node_api: Api<Node> = Api::all(client.clone());
        for node in nodes.state() {
            let name = node.name_any();
            let lease = leases.get(&ObjectRef::new(&name).within("kube-node-lease"));
            let last = logic::last_heartbeat(&node, lease.as_deref())
                .unwrap_or(started)
                .max(started);
            let silent = now.duration_since(last) > grace;
            let ready = logic::ready_condition(&node).map(|c| c.status.clone());
            if silent && ready.as_deref() != Some("Unknown") {
                tracing::info!(node = %name, "node stopped posting status; marking it Unknown");
                let status =
                    json!({"status": {"conditions": logic::unknown_conditions(&node, now)}});
                if let Err(e) = node_api
                    .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
                    .await
                {
                    tracing::warn!(node = %name, "marking Unknown: {e}");
                }
                events
                    .normal(
                        node.as_ref(),
                        "NodeNotReady",
                        &format!("Node {name} status is now: NodeNotReady"),
                    )
                    .await;
                continue;
            }
            let taints = logic::desired_taints(&node, now);
            let current = node
                .spec
                .as_ref()
                .and_then(|s| s.taints.clone())
                .unwrap_or_default();
            if taints != current {
                let patch = json!({"spec": {"taints": taints}});
                if let Err(e) = node_api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                {
                    tracing::warn!(node = %name, "updating taints: {e}");
                }
            }
        }
        evict_from_tainted_nodes(&client, &events, &nodes.state(), &pods.state(), now).await;
    }
    node_task.abort();
    lease_task.abort();
    pod_task.abort();
}

async fn evict_from_tainted_nodes(
    client: &kube::Client,
    events: &Events,
    nodes: &[std::sync::Arc<Node>],
    pods: &[std::sync::Arc<Pod>],
    now: Timestamp,
) {
    for node in nodes {
        let taints = node
            .spec
            .as_ref()
            .and_then(|s| s.taints.clone())
            .unwrap_or_default();
        if !taints.iter().any(|t| t.effect == "NoExecute") {
            continue;
        }
        let name = node.name_any();
        for pod in pods.iter().filter(|p| {
            p.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(name.as_str())
                && p.metadata.deletion_timestamp.is_none()
        }) {
            let Some(at) = logic::eviction_time(pod, &taints, now) else {
                continue;
            };
            if at > now {
                continue;
            }
            let ns = pod.namespace().unwrap_or_default();
            events
                .normal(
                    pod.as_ref(),
                    "TaintManagerEviction",
                    &format!("Marking for deletion Pod {ns}/{}", pod.name_any()),
                )
                .await;
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let _ = api.delete(&pod.name_any(), &DeleteParams::default()).await;
        }
    }
}
