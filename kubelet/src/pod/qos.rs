//! A pod's quality-of-service class and the OOM score adjustment that
//! follows from it.
//!
//! Only CPU and memory count. Init containers count like regular ones. A
//! request left unset while its limit is set is taken to equal the limit,
//! as the API server's defaulting would have made it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::quantity;

pub const GUARANTEED: &str = "Guaranteed";
pub const BURSTABLE: &str = "Burstable";
pub const BEST_EFFORT: &str = "BestEffort";

/// What Guaranteed containers (and node-critical pods) get: below every
/// other pod, just above the kubelet's own -999.
pub const GUARANTEED_OOM_SCORE_ADJ: i32 = -997;
/// What BestEffort containers get: killed first.
pub const BEST_EFFORT_OOM_SCORE_ADJ: i32 = 1000;

/// The resources QoS is computed over.
const QOS_RESOURCES: [&str; 2] = ["cpu", "memory"];

/// An amount in the unit the kubelet uses for it: milli-cores for CPU,
/// bytes otherwise. Unparseable quantities count as absent: the API server
/// validates them, so this only guards against garbage.
pub(crate) fn amount(resource: &str, q: &Quantity) -> Option<i64> {
    if resource == "cpu" {
        quantity::cpu_milli(q).ok()
    } else {
        quantity::bytes(q).ok()
    }
}

/// A container's effective (requests, limits) for CPU and memory, positive
/// amounts only, with requests defaulted from limits.
pub(crate) fn container_amounts(
    c: &Container,
) -> (BTreeMap<&'static str, i64>, BTreeMap<&'static str, i64>) {
    let mut requests = BTreeMap::new();
    let mut limits = BTreeMap::new();
    let Some(res) = c.resources.as_ref() else {
        return (requests, limits);
    };
    for name in QOS_RESOURCES {
        let limit = res
            .limits
            .as_ref()
            .and_then(|m| m.get(name))
            .and_then(|q| amount(name, q));
        let request = res
            .requests
            .as_ref()
            .and_then(|m| m.get(name))
            .and_then(|q| amount(name, q));
        if let Some(l) = limit.filter(|v| *v > 0) {
            limits.insert(name, l);
        }
        if let Some(r) = request.or(limit).filter(|v| *v > 0) {
            requests.insert(name, r);
        }
    }
    (requests, limits)
}

/// The pod's QoS class (`status.qosClass`).
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return BEST_EFFORT;
    };
    let mut requests: BTreeMap<&str, i64> = BTreeMap::new();
    let mut limits: BTreeMap<&str, i64> = BTreeMap::new();
    let mut guaranteed = true;
    let all = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten());
    for c in all {
        let (req, lim) = container_amounts(c);
        for (name, v) in &req {
            *requests.entry(name).or_default() += v;
        }
        for (name, v) in &lim {
            *limits.entry(name).or_default() += v;
        }
        // Every container must limit both CPU and memory to be Guaranteed.
        if QOS_RESOURCES.iter().any(|r| !lim.contains_key(r)) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return BEST_EFFORT;
    }
    // Guaranteed also needs the pod's total requests to equal its limits.
    if guaranteed && requests == limits {
        GUARANTEED
    } else {
        BURSTABLE
    }
}

/// `oom_score_adj` for one container: fixed for Guaranteed and BestEffort;
/// for Burstable the larger a share of the node's memory the container
/// requests, the lower its score, but always strictly between the two
/// fixed classes (3..=999).
pub fn oom_score_adj(qos: &str, memory_request: i64, memory_capacity: i64) -> i32 {
    match qos {
        GUARANTEED => return GUARANTEED_OOM_SCORE_ADJ,
        BEST_EFFORT => return BEST_EFFORT_OOM_SCORE_ADJ,
        _ => {}
    }
    if memory_capacity <= 0 {
        // Unknown capacity: as if the request were negligible.
        return BEST_EFFORT_OOM_SCORE_ADJ - 1;
    }
    let request = i128::from(memory_request.max(0));
    let adj = 1000 - (1000 * request) / i128::from(memory_capacity);
    // A Guaranteed container using all memory scores about 3 after its
    // -997, so Burstable ones must stay above that…
    let floor = 1000 + GUARANTEED_OOM_SCORE_ADJ;
    // …and below BestEffort ones.
    adj.clamp(i128::from(floor), i128::from(BEST_EFFORT_OOM_SCORE_ADJ - 1)) as i32
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{PodSpec, ResourceRequirements};

    fn q(s: &str) -> Quantity {
        Quantity(s.to_string())
    }

    fn res(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
        if pairs.is_empty() {
            return None;
        }
        Some(pairs.iter().map(|(k, v)| (k.to_string(), q(v))).collect())
    }

    fn container(name: &str, req: &[(&str, &str)], lim: &[(&str, &str)]) -> Container {
        Container {
            name: name.into(),
            resources: Some(ResourceRequirements {
                requests: res(req),
                limits: res(lim),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn pod(containers: Vec<Container>, init: Vec<Container>) -> Pod {
        Pod {
            spec: Some(PodSpec {
                containers,
                init_containers: if init.is_empty() { None } else { Some(init) },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn qos_table() {
        let full = [("cpu", "1"), ("memory", "1Gi")];
        let cases: Vec<(&str, Pod, &str)> = vec![
            (
                "no resources",
                pod(vec![container("a", &[], &[])], vec![]),
                BEST_EFFORT,
            ),
            (
                "zero requests",
                pod(vec![container("a", &[("cpu", "0")], &[])], vec![]),
                BEST_EFFORT,
            ),
            (
                "requests == limits",
                pod(vec![container("a", &full, &full)], vec![]),
                GUARANTEED,
            ),
            (
                "limits only (requests default)",
                pod(vec![container("a", &[], &full)], vec![]),
                GUARANTEED,
            ),
            (
                "request < limit",
                pod(
                    vec![container("a", &[("cpu", "500m"), ("memory", "1Gi")], &full)],
                    vec![],
                ),
                BURSTABLE,
            ),
            (
                "requests only",
                pod(vec![container("a", &[("cpu", "1")], &[])], vec![]),
                BURSTABLE,
            ),
            (
                "cpu limit only",
                pod(vec![container("a", &[], &[("cpu", "1")])], vec![]),
                BURSTABLE,
            ),
            (
                "one guaranteed, one best-effort",
                pod(
                    vec![container("a", &full, &full), container("b", &[], &[])],
                    vec![],
                ),
                BURSTABLE,
            ),
            (
                "same units spelled differently",
                pod(
                    vec![container(
                        "a",
                        &[("cpu", "1000m"), ("memory", "1024Mi")],
                        &full,
                    )],
                    vec![],
                ),
                GUARANTEED,
            ),
            (
                "init container best-effort",
                pod(
                    vec![container("a", &full, &full)],
                    vec![container("i", &[], &[])],
                ),
                BURSTABLE,
            ),
            (
                "init container guaranteed too",
                pod(
                    vec![container("a", &full, &full)],
                    vec![container("i", &full, &full)],
                ),
                GUARANTEED,
            ),
            (
                "only init has resources",
                pod(
                    vec![container("a", &[], &[])],
                    vec![container("i", &[("memory", "1Mi")], &[])],
                ),
                BURSTABLE,
            ),
            (
                "other resources ignored",
                pod(
                    vec![container(
                        "a",
                        &[("ephemeral-storage", "1Gi")],
                        &[("ephemeral-storage", "1Gi")],
                    )],
                    vec![],
                ),
                BEST_EFFORT,
            ),
        ];
        for (what, p, want) in cases {
            assert_eq!(qos_class(&p), want, "{what}");
        }
    }

    #[test]
    fn oom_scores() {
        let gi = 1 << 30;
        assert_eq!(oom_score_adj(GUARANTEED, gi, 4 * gi), -997);
        assert_eq!(oom_score_adj(BEST_EFFORT, 0, 4 * gi), 1000);
        assert_eq!(oom_score_adj(BURSTABLE, gi, 4 * gi), 750);
        assert_eq!(
            oom_score_adj(BURSTABLE, 0, 4 * gi),
            999,
            "never as bad as BestEffort"
        );
        assert_eq!(
            oom_score_adj(BURSTABLE, 4 * gi, 4 * gi),
            3,
            "never as good as Guaranteed"
        );
        assert_eq!(oom_score_adj(BURSTABLE, 8 * gi, 4 * gi), 3);
        assert_eq!(oom_score_adj(BURSTABLE, 1, 0), 999);
    }
}
