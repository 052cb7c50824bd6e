//! Deployment rollout arithmetic, without IO: the pod-template hash that
//! names a ReplicaSet, which ReplicaSet is the new one, how far a rolling
//! update may scale up and down in one step (maxSurge, maxUnavailable),
//! revisions, and the status a Deployment reports.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";

/// Annotations of a Deployment that are its own, not its ReplicaSets'.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED_REPLICAS,
    MAX_REPLICAS,
];

/// The template without the hash label, as a Deployment holds it.
pub fn strip_hash(template: &PodTemplateSpec) -> PodTemplateSpec {
    let mut t = template.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(HASH_LABEL);
        if labels.is_empty() {
            t.metadata.as_mut().expect("has labels").labels = None;
        }
    }
    t
}

/// A short, stable hash of a template (FNV-1a over its JSON, spelled with
/// upstream's vowel-free alphabet so names never spell words).
pub fn template_hash(template: &PodTemplateSpec, collision_count: i32) -> String {
    let json = serde_json::to_vec(&strip_hash(template)).expect("serializable");
    let mut h: u32 = 0x811c_9dc5;
    for b in json.iter().chain(collision_count.to_le_bytes().iter()) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut out = String::new();
    let mut n = h;
    loop {
        out.push(ALPHABET[(n % ALPHABET.len() as u32) as usize] as char);
        n /= ALPHABET.len() as u32;
        if n == 0 {
            break;
        }
    }
    out
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(REVISION))
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

/// The ReplicaSet running `deployment`'s current template, if any.
pub fn find_new<'a>(deployment: &Deployment, owned: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let template = deployment.spec.as_ref()?.template.clone();
    owned
        .iter()
        .filter(|rs| {
            rs.spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .is_some_and(|t| strip_hash(t) == strip_hash(&template))
        })
        // Several can match after a hash collision: the oldest wins.
        .min_by_key(|rs| rs.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// Annotations a ReplicaSet gets from its Deployment.
pub fn copied_annotations(deployment: &Deployment) -> BTreeMap<String, String> {
    deployment
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
        .collect()
}

/// An int-or-percent of `total`, rounded up or down.
pub fn scaled(value: Option<&IntOrString>, total: i32, default: &str, round_up: bool) -> i32 {
    let v = value
        .cloned()
        .unwrap_or_else(|| IntOrString::String(default.to_string()));
    match v {
        IntOrString::Int(n) => n.max(0),
        IntOrString::String(s) => {
            let pct: f64 = s.trim_end_matches('%').parse().unwrap_or(0.0);
            let exact = pct * f64::from(total) / 100.0;
            let r = if round_up {
                exact.ceil()
            } else {
                exact.floor()
            };
            r.max(0.0) as i32
        }
    }
}

/// (maxSurge, maxUnavailable) for `replicas`, never both zero.
pub fn surge_and_unavailable(deployment: &Deployment, replicas: i32) -> (i32, i32) {
    let ru = deployment
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let surge = scaled(ru.and_then(|r| r.max_surge.as_ref()), replicas, "25%", true);
    let unavailable = scaled(
        ru.and_then(|r| r.max_unavailable.as_ref()),
        replicas,
        "25%",
        false,
    );
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

fn spec_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0)
}

fn available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

/// The new ReplicaSet's replicas after one rolling-update step up.
pub fn rolling_scale_up(replicas: i32, surge: i32, new: &ReplicaSet, all: &[ReplicaSet]) -> i32 {
    let current = spec_replicas(new);
    if current >= replicas {
        return replicas;
    }
    let total: i32 = all.iter().map(spec_replicas).sum();
    let room = (replicas + surge - total).max(0);
    (current + room).min(replicas)
}

/// How many old replicas may go in this step, keeping at least
/// `replicas - maxUnavailable` available: first those that are not
/// available anyway, then available ones.
///
/// Both are bounded by what the ReplicaSets' sizes allow, counting every
/// old replica as available and every missing new one as not (upstream's
/// `maxScaledDown`). Statuses lag: an old ReplicaSet just scaled down still
/// reports the pod it is deleting as available, and counting on that
/// would let the next step take one pod too many.
pub fn rolling_scale_down(
    replicas: i32,
    max_unavailable: i32,
    new: &ReplicaSet,
    old: &[ReplicaSet],
) -> Vec<(String, i32)> {
    let min_available = replicas - max_unavailable;
    let all_pods = spec_replicas(new) + old.iter().map(spec_replicas).sum::<i32>();
    let new_unavailable = (spec_replicas(new) - available(new)).max(0);
    let mut allowed = (all_pods - min_available - new_unavailable).max(0);
    let total_available: i32 = available(new) + old.iter().map(available).sum::<i32>();
    let mut budget = (total_available - min_available).max(0);
    let mut targets = Vec::new();
    let mut sorted: Vec<&ReplicaSet> = old.iter().filter(|rs| spec_replicas(rs) > 0).collect();
    sorted.sort_by_key(|rs| revision(rs));
    for rs in sorted {
        let name = rs.metadata.name.clone().unwrap_or_default();
        let current = spec_replicas(rs);
        // Replicas not available cost no availability to remove.
        let unhealthy = (current - available(rs)).max(0).min(allowed);
        allowed -= unhealthy;
        let mut target = current - unhealthy;
        let take = budget.min(target).min(allowed);
        target -= take;
        budget -= take;
        allowed -= take;
        if target != current {
            targets.push((name, target));
        }
    }
    targets
}

/// Whether the rollout is complete: everything runs the new template and
/// is available.
pub fn complete(replicas: i32, new: &ReplicaSet, old: &[ReplicaSet]) -> bool {
    let new_status = new.status.clone().unwrap_or_default();
    spec_replicas(new) == replicas
        && new_status.replicas == replicas
        && new_status.available_replicas.unwrap_or(0) >= replicas
        && old
            .iter()
            .all(|rs| spec_replicas(rs) == 0 && rs.status.as_ref().map_or(0, |s| s.replicas) == 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{
        DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus,
        RollingUpdateDeployment,
    };
    use k8s_openapi::api::core::v1::{Container, PodSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn template(image: &str) -> PodTemplateSpec {
        PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some([("app".to_string(), "web".to_string())].into()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "c".into(),
                    image: Some(image.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        }
    }

    fn rs(name: &str, rev: i64, spec: i32, avail: i32) -> ReplicaSet {
        ReplicaSet {
            metadata: ObjectMeta {
                name: Some(name.into()),
                annotations: Some([(REVISION.to_string(), rev.to_string())].into()),
                ..Default::default()
            },
            spec: Some(ReplicaSetSpec {
                replicas: Some(spec),
                ..Default::default()
            }),
            status: Some(ReplicaSetStatus {
                replicas: spec,
                available_replicas: Some(avail),
                ..Default::default()
            }),
        }
    }

    fn deployment(surge: IntOrString, unavailable: IntOrString) -> Deployment {
        Deployment {
            spec: Some(DeploymentSpec {
                strategy: Some(DeploymentStrategy {
                    type_: Some("RollingUpdate".into()),
                    rolling_update: Some(RollingUpdateDeployment {
                        max_surge: Some(surge),
                        max_unavailable: Some(unavailable),
                    }),
                }),
                template: template("a"),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn hashes_ignore_the_hash_label_and_differ_by_template() {
        let a = template("a");
        let mut labelled = a.clone();
        labelled
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(HASH_LABEL.into(), "x".into());
        assert_eq!(template_hash(&a, 0), template_hash(&labelled, 0));
        assert_ne!(template_hash(&a, 0), template_hash(&template("b"), 0));
        assert_ne!(template_hash(&a, 0), template_hash(&a, 1));
        assert!(template_hash(&a, 0).chars().all(|c| !"aeiou".contains(c)));
    }

    #[test]
    fn percentages_round_up_for_surge_and_down_for_unavailable() {
        let d = deployment(
            IntOrString::String("25%".into()),
            IntOrString::String("25%".into()),
        );
        assert_eq!(surge_and_unavailable(&d, 10), (3, 2));
        let zero = deployment(IntOrString::Int(0), IntOrString::Int(0));
        assert_eq!(surge_and_unavailable(&zero, 10), (0, 1));
    }

    #[test]
    fn a_rolling_step_respects_surge_and_unavailability() {
        // 4 replicas, surge 1, unavailable 1: old has 4 available.
        let old = rs("old", 1, 4, 4);
        let new = rs("new", 2, 0, 0);
        let all = [old.clone(), new.clone()];
        assert_eq!(rolling_scale_up(4, 1, &new, &all), 1);
        // New has 1 (not yet available): old may lose 1.
        let new = rs("new", 2, 1, 0);
        assert_eq!(
            rolling_scale_down(4, 1, &new, std::slice::from_ref(&old)),
            [("old".to_string(), 3)]
        );
        // Unavailable old replicas go first, for free, as far as the
        // sizes allow (5 pods, 3 must stay, 1 new one is not ready).
        let sick = rs("old", 1, 4, 2);
        assert_eq!(
            rolling_scale_down(4, 1, &new, &[sick]),
            [("old".to_string(), 3)]
        );
        // A status that lags a scale-down (old asks for 2, still reports
        // 3 available) gives nothing more while a new pod is not ready:
        // 3 replicas, surge 1, unavailable 0, new has 2 with 1 available.
        let lagging = rs("old", 1, 2, 3);
        let new = rs("new", 2, 2, 1);
        assert!(rolling_scale_down(3, 0, &new, &[lagging]).is_empty());
        // Once the new pod is available, one old replica may go.
        let new = rs("new", 2, 2, 2);
        assert_eq!(
            rolling_scale_down(3, 0, &new, &[rs("old", 1, 2, 2)]),
            [("old".to_string(), 1)]
        );
        assert!(!complete(4, &new, &[old]));
        assert!(complete(4, &rs("new", 2, 4, 4), &[rs("old", 1, 0, 0)]));
    }
}
