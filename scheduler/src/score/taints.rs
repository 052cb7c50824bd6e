//! The TaintToleration score: nodes with fewer `PreferNoSchedule` taints
//! the pod does not tolerate score higher (none: 100, the most: 0). Only
//! tolerations without an effect or with `PreferNoSchedule` count here.

use k8s_openapi::api::core::v1::{Pod, Toleration};

use crate::filter::tolerates;
use crate::node_info::NodeInfo;
use crate::score::{default_normalize, MAX_SCORE};

const PREFER_NO_SCHEDULE: &str = "PreferNoSchedule";

fn untolerated(tolerations: &[&Toleration], node: &NodeInfo) -> i64 {
    node.taints
        .iter()
        .filter(|taint| {
            taint.effect == PREFER_NO_SCHEDULE && !tolerations.iter().any(|t| tolerates(t, taint))
        })
        .count() as i64
}

/// Normalised scores for `feasible`.
pub fn scores(pod: &Pod, feasible: &[&NodeInfo]) -> Vec<i64> {
    let tolerations: Vec<&Toleration> = pod
        .spec
        .as_ref()
        .and_then(|s| s.tolerations.as_deref())
        .unwrap_or(&[])
        .iter()
        .filter(|t| {
            matches!(
                t.effect.as_deref(),
                None | Some("") | Some(PREFER_NO_SCHEDULE)
            )
        })
        .collect();
    let mut scores: Vec<i64> = feasible
        .iter()
        .map(|n| untolerated(&tolerations, n))
        .collect();
    default_normalize(&mut scores, MAX_SCORE, true);
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tests::{node, pod_requesting};
    use k8s_openapi::api::core::v1::Taint;
    use std::sync::Arc;

    fn with_taints(name: &str, taints: &[(&str, &str)]) -> NodeInfo {
        let mut n = node(name, &[]);
        n.spec.as_mut().unwrap().taints = Some(
            taints
                .iter()
                .map(|(key, effect)| Taint {
                    key: key.to_string(),
                    effect: effect.to_string(),
                    ..Default::default()
                })
                .collect(),
        );
        NodeInfo::new(Arc::new(n))
    }

    #[test]
    fn fewer_untolerated_soft_taints_score_higher() {
        let nodes = [
            with_taints(
                "two",
                &[("a", PREFER_NO_SCHEDULE), ("b", PREFER_NO_SCHEDULE)],
            ),
            with_taints("one", &[("a", PREFER_NO_SCHEDULE), ("c", "NoSchedule")]),
            with_taints("none", &[]),
        ];
        let feasible: Vec<&NodeInfo> = nodes.iter().collect();
        let mut p = pod_requesting("p", &[]);
        assert_eq!(scores(&p, &feasible), [0, 50, 100]);
        // Tolerating `a` (any effect) leaves one taint on "two".
        p.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("a".into()),
            operator: Some("Exists".into()),
            ..Default::default()
        }]);
        assert_eq!(scores(&p, &feasible), [0, 100, 100]);
        // A NoSchedule toleration does not count for the score.
        p.spec.as_mut().unwrap().tolerations = Some(vec![Toleration {
            key: Some("b".into()),
            operator: Some("Exists".into()),
            effect: Some("NoSchedule".into()),
            ..Default::default()
        }]);
        assert_eq!(scores(&p, &feasible), [0, 50, 100]);
        let clean = [with_taints("x", &[]), with_taints("y", &[])];
        let feasible: Vec<&NodeInfo> = clean.iter().collect();
        assert_eq!(scores(&p, &feasible), [100, 100]);
    }
}
