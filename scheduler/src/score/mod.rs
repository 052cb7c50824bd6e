//! Scores for the nodes that passed the filters, and the choice among the
//! best.
//!
//! Each plugin of upstream's default profile scores every feasible node
//! 0..=100 (normalised as upstream normalises it) and the weighted sum
//! decides:
//!
//! | plugin | weight | module |
//! |---|---|---|
//! | NodeResourcesFit (least allocated) | 1 | `resources` |
//! | NodeResourcesBalancedAllocation | 1 | `resources` |
//! | NodeAffinity (preferred terms) | 2 | `node_affinity` |
//! | InterPodAffinity | 2 | `crate::interpod::score` |
//! | PodTopologySpread (incl. system defaults) | 2 | `crate::topology_spread::score` |
//! | TaintToleration (PreferNoSchedule) | 3 | `taints` |
//!
//! ImageLocality is not scored (rkube's scheduler does not know which
//! images nodes hold). A plugin with nothing to score (no preferences, no
//! constraints) adds 0 everywhere, as a skipped plugin does upstream.
//!
//! Ties go to the best nodes in name order, taken round-robin with a
//! counter the caller keeps, so equal nodes take turns.

pub mod node_affinity;
pub mod resources;
pub mod taints;

use crate::cache::Namespaces;
use crate::interpod;
use crate::node_info::{NodeInfo, PodInfo};
use crate::topology_spread;

pub const MAX_SCORE: i64 = 100;
pub const LEAST_ALLOCATED_WEIGHT: i64 = 1;
pub const BALANCED_ALLOCATION_WEIGHT: i64 = 1;
pub const NODE_AFFINITY_WEIGHT: i64 = 2;
pub const INTER_POD_AFFINITY_WEIGHT: i64 = 2;
pub const TOPOLOGY_SPREAD_WEIGHT: i64 = 2;
pub const TAINT_TOLERATION_WEIGHT: i64 = 3;

/// Upstream's default normalisation: scale so the highest becomes `max`
/// (all stay 0 when all are 0), reversed (`max - score`) if asked.
pub fn default_normalize(scores: &mut [i64], max: i64, reverse: bool) {
    let highest = scores.iter().copied().max().unwrap_or(0);
    for s in scores.iter_mut() {
        if highest == 0 {
            *s = if reverse { max } else { 0 };
            continue;
        }
        let scaled = max * *s / highest;
        *s = if reverse { max - scaled } else { scaled };
    }
}

fn add_weighted(total: &mut [i64], scores: Option<Vec<i64>>, weight: i64) {
    for (t, s) in total.iter_mut().zip(scores.into_iter().flatten()) {
        *t += weight * s;
    }
}

/// Weighted total per feasible node, in `feasible` order. `nodes` is the
/// whole cluster (spreading and inter-pod affinity count pods on every
/// node).
pub fn total(
    wanted: &PodInfo,
    nodes: &[NodeInfo],
    namespaces: &Namespaces,
    feasible: &[&NodeInfo],
) -> Vec<i64> {
    let balanced = resources::balanced_applies(wanted);
    let mut total: Vec<i64> = feasible
        .iter()
        .map(|n| {
            let mut s = LEAST_ALLOCATED_WEIGHT * resources::least_allocated(wanted, n);
            if balanced {
                s += BALANCED_ALLOCATION_WEIGHT * resources::balanced_allocation(wanted, n);
            }
            s
        })
        .collect();
    add_weighted(
        &mut total,
        node_affinity::scores(wanted.pod, feasible),
        NODE_AFFINITY_WEIGHT,
    );
    add_weighted(
        &mut total,
        interpod::score::scores(wanted, nodes, namespaces, feasible),
        INTER_POD_AFFINITY_WEIGHT,
    );
    add_weighted(
        &mut total,
        topology_spread::score::scores(wanted, nodes, feasible),
        TOPOLOGY_SPREAD_WEIGHT,
    );
    add_weighted(
        &mut total,
        Some(taints::scores(wanted.pod, feasible)),
        TAINT_TOLERATION_WEIGHT,
    );
    total
}

/// Index of the chosen node: among those with the highest score (in the
/// order given), the `turn`-th modulo their number; `turn` advances when
/// there was a choice to make.
pub fn select(scores: &[i64], turn: &mut usize) -> Option<usize> {
    let best = *scores.iter().max()?;
    let tied = scores.iter().filter(|&&s| s == best).count();
    let nth = *turn % tied;
    let pick = scores
        .iter()
        .enumerate()
        .filter(|(_, &s)| s == best)
        .nth(nth)
        .map(|(i, _)| i);
    if tied > 1 {
        *turn = turn.wrapping_add(1);
    }
    pick
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_normalisation() {
        let mut s = [0, 5, 10];
        default_normalize(&mut s, 100, false);
        assert_eq!(s, [0, 50, 100]);
        let mut s = [0, 5, 10];
        default_normalize(&mut s, 100, true);
        assert_eq!(s, [100, 50, 0]);
        let mut s = [0, 0];
        default_normalize(&mut s, 100, false);
        assert_eq!(s, [0, 0]);
        default_normalize(&mut s, 100, true);
        assert_eq!(s, [100, 100]);
    }

    #[test]
    fn ties_rotate_deterministically() {
        let mut turn = 0;
        let picks: Vec<usize> = (0..4)
            .map(|_| select(&[5, 9, 9, 1], &mut turn).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 1, 2]);
        let before = turn;
        assert_eq!(select(&[1, 7, 3], &mut turn), Some(1));
        assert_eq!(turn, before, "a clear winner does not use a turn");
        assert_eq!(select(&[], &mut turn), None);
    }
}
