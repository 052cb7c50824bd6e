//! The rolling update's arithmetic and wording, without IO: the next
//! step given the two controllers' replicas and ready pods (never fewer
//! than the desired count available, never more than one extra pod), the
//! name and labels of the new controller, and kubectl's progress lines.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ReplicationController;

/// The label that tells the old and new controllers' pods apart.
pub const DEPLOYMENT_KEY: &str = "deployment";
/// On the new controller: how many replicas the update ends with.
pub const DESIRED_REPLICAS: &str = "kubectl.kubernetes.io/desired-replicas";
/// On the new controller: which controller it replaces (`name:uid`).
pub const SOURCE_ID: &str = "kubectl.kubernetes.io/update-source-id";

/// One step of the update.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Scale the new controller up to this many.
    ScaleUpNew(i32),
    /// Scale the old controller down to this many.
    ScaleDownOld(i32),
    /// Wait for pods to become ready.
    Wait,
    Done,
}

/// The next step: scale up while the surge allows (at most `desired + 1`
/// pods), scale down only what ready new pods make up for.
pub fn next(
    desired: i32,
    new_replicas: i32,
    new_ready: i32,
    old_replicas: i32,
    old_ready: i32,
) -> Step {
    if new_replicas >= desired && old_replicas == 0 {
        return if new_ready >= desired {
            Step::Done
        } else {
            Step::Wait
        };
    }
    // Keep `desired` available: the old controller may shrink by what the
    // new one has ready beyond the shortfall.
    let available = new_ready + old_ready;
    let may_remove = (available - desired).max(0);
    if old_replicas > 0 && may_remove > 0 {
        return Step::ScaleDownOld((old_replicas - may_remove).max(0));
    }
    if new_replicas < desired && new_replicas + old_replicas < desired + 1 {
        return Step::ScaleUpNew(new_replicas + 1);
    }
    Step::Wait
}

/// A short, stable hex hash (FNV-1a) naming the new controller.
pub fn hash(text: &str) -> String {
    let mut h: u32 = 0x811c_9dc5;
    for b in text.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("{h:08x}")
}

/// The new controller: the old one's spec with `image` in `container`
/// (or the only container), the deployment key set to `key`, no replicas.
pub fn new_controller(
    old: &ReplicationController,
    name: &str,
    image: &str,
    container: Option<&str>,
    key: &str,
    desired: i32,
) -> Result<ReplicationController, String> {
    let mut spec = old.spec.clone().unwrap_or_default();
    let template = spec.template.get_or_insert_with(Default::default);
    let pod_spec = template.spec.get_or_insert_with(Default::default);
    let index = match container {
        Some(c) => pod_spec
            .containers
            .iter()
            .position(|x| x.name == c)
            .ok_or_else(|| format!("no container named {c:?}"))?,
        None if pod_spec.containers.len() == 1 => 0,
        None => return Err("the pod has several containers: name one with --container".into()),
    };
    pod_spec.containers[index].image = Some(image.to_string());
    let meta = template.metadata.get_or_insert_with(Default::default);
    meta.labels
        .get_or_insert_with(BTreeMap::new)
        .insert(DEPLOYMENT_KEY.into(), key.into());
    spec.selector
        .get_or_insert_with(BTreeMap::new)
        .insert(DEPLOYMENT_KEY.into(), key.into());
    spec.replicas = Some(0);
    let old_name = old.metadata.name.clone().unwrap_or_default();
    let old_uid = old.metadata.uid.clone().unwrap_or_default();
    Ok(ReplicationController {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some(name.into()),
            namespace: old.metadata.namespace.clone(),
            labels: old.metadata.labels.clone(),
            annotations: Some(BTreeMap::from([
                (DESIRED_REPLICAS.to_string(), desired.to_string()),
                (SOURCE_ID.to_string(), format!("{old_name}:{old_uid}")),
            ])),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    })
}

pub fn plan_line(new: &str, old: &str, old_replicas: i32, desired: i32) -> String {
    format!(
        "Scaling up {new} from 0 to {desired}, scaling down {old} from {old_replicas} to 0 (keep {desired} pods available, don't exceed {} pods)",
        desired + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plays an update through, pods becoming ready at once.
    fn play(desired: i32, old: i32) -> Vec<Step> {
        let (mut new_r, mut old_r) = (0, old);
        let mut steps = Vec::new();
        loop {
            let step = next(desired, new_r, new_r, old_r, old_r);
            match step {
                Step::ScaleUpNew(n) => new_r = n,
                Step::ScaleDownOld(n) => old_r = n,
                Step::Done => {
                    steps.push(step);
                    return steps;
                }
                Step::Wait => panic!("stuck at new {new_r}, old {old_r}"),
            }
            assert!(
                new_r + old_r <= desired + 1,
                "never more than one extra pod"
            );
            assert!(new_r + old_r >= desired, "never fewer than desired");
            steps.push(step);
        }
    }

    #[test]
    fn one_up_one_down_within_the_surge() {
        assert_eq!(
            play(3, 3),
            [
                Step::ScaleUpNew(1),
                Step::ScaleDownOld(2),
                Step::ScaleUpNew(2),
                Step::ScaleDownOld(1),
                Step::ScaleUpNew(3),
                Step::ScaleDownOld(0),
                Step::Done
            ]
        );
    }

    #[test]
    fn unready_new_pods_hold_the_old_ones() {
        assert_eq!(next(3, 1, 0, 3, 3), Step::Wait);
        assert_eq!(next(3, 3, 2, 0, 0), Step::Wait);
        assert_eq!(hash("a"), hash("a"));
        assert_ne!(hash("a"), hash("b"));
    }
}
