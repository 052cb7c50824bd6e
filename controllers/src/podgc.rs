//! Pod garbage collection: deletes the oldest terminated pods beyond a
//! threshold, and pods bound to nodes that no longer exist.

use std::collections::BTreeSet;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use kube::api::{Api, DeleteParams, ResourceExt};

const PERIOD: Duration = Duration::from_secs(10);

fn terminated(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// The terminated pods to delete (oldest first) to keep `threshold`.
pub fn excess_terminated(pods: &[&Pod], threshold: usize) -> Vec<(String, String)> {
    let mut done: Vec<&&Pod> = pods.iter().filter(|p| terminated(p)).collect();
    if done.len() <= threshold {
        return Vec::new();
    }
    done.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let n = done.len() - threshold;
    done.into_iter()
        .take(n)
        .map(|p| (p.namespace().unwrap_or_default(), p.name_any()))
        .collect()
}

/// Pods bound to a node not in `nodes`.
pub fn orphaned(pods: &[&Pod], nodes: &BTreeSet<String>) -> Vec<(String, String)> {
    pods.iter()
        .filter(|p| {
            p.spec
                .as_ref()
                .and_then(|s| s.node_name.as_deref())
                .is_some_and(|n| !n.is_empty() && !nodes.contains(n))
        })
        .map(|p| (p.namespace().unwrap_or_default(), p.name_any()))
        .collect()
}

pub async fn run(client: kube::Client, threshold: usize) {
    let (pods, pod_task) = crate::cache::store::<Pod>(&client);
    let (nodes, node_task) = crate::cache::store::<Node>(&client);
    loop {
        tokio::time::sleep(PERIOD).await;
        if pods.wait_until_ready().await.is_err() || nodes.wait_until_ready().await.is_err() {
            break;
        }
        let all = pods.state();
        let refs: Vec<&Pod> = all.iter().map(|p| p.as_ref()).collect();
        for (ns, name) in excess_terminated(&refs, threshold) {
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let _ = api.delete(&name, &DeleteParams::default()).await;
        }
        let node_names: BTreeSet<String> = nodes.state().iter().map(|n| n.name_any()).collect();
        for (ns, name) in orphaned(&refs, &node_names) {
            // The cache may not have seen a new node yet: ask.
            let node = all
                .iter()
                .find(|p| p.name_any() == name && p.namespace().as_deref() == Some(&ns))
                .and_then(|p| p.spec.as_ref()?.node_name.clone())
                .unwrap_or_default();
            if let Ok(None) = Api::<Node>::all(client.clone()).get_opt(&node).await {
                tracing::info!(pod = %name, namespace = %ns, node = %node, "deleting a pod bound to a deleted node");
                let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
                let _ = api
                    .delete(&name, &DeleteParams::default().grace_period(0))
                    .await;
            }
        }
    }
    pod_task.abort();
    node_task.abort();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pods::testing::pod;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::{SignedDuration, Timestamp};

    #[test]
    fn the_oldest_terminated_pods_above_the_threshold_go() {
        let mut pods = Vec::new();
        for (i, phase) in ["Succeeded", "Running", "Failed", "Succeeded"]
            .iter()
            .enumerate()
        {
            let mut p = pod(&format!("p{i}"), "n1", phase, None);
            p.metadata.creation_timestamp = Some(Time(
                Timestamp::UNIX_EPOCH + SignedDuration::from_secs(i as i64),
            ));
            pods.push(p);
        }
        let refs: Vec<&Pod> = pods.iter().collect();
        let names: Vec<String> = excess_terminated(&refs, 1)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(names, ["p0", "p2"]);
        assert!(excess_terminated(&refs, 3).is_empty());
        let nodes: BTreeSet<String> = ["n2".to_string()].into();
        assert_eq!(orphaned(&refs, &nodes).len(), 4);
        let nodes: BTreeSet<String> = ["n1".to_string()].into();
        assert!(orphaned(&refs, &nodes).is_empty());
    }
}
