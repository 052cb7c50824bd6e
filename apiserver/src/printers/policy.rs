//! PodDisruptionBudget rows (policy/v1).

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::{age, at, col, int, int_or_string, name, s, Column, AGE, NAME};

pub(super) const PDB_COLUMNS: &[Column] = &[
    NAME,
    col(
        "Min Available",
        "string",
        "Pods that must stay available (count or percentage).",
    ),
    col(
        "Max Unavailable",
        "string",
        "Pods that may be unavailable (count or percentage).",
    ),
    col(
        "Allowed Disruptions",
        "integer",
        "Pod disruptions currently allowed.",
    ),
    AGE,
];

pub(super) fn pdb_row(pdb: &Value, now: OffsetDateTime) -> Vec<Value> {
    let bound = |field: &str| at(pdb, &["spec", field]).map_or("N/A".to_string(), int_or_string);
    vec![
        name(pdb),
        s(bound("minAvailable")),
        s(bound("maxUnavailable")),
        json!(int(pdb, &["status", "disruptionsAllowed"])),
        age(pdb, now),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::row;
    use super::super::test_support::{ago, NOW};
    use serde_json::json;

    #[test]
    fn pod_disruption_budgets() {
        let pdb = json!({
            "metadata": {"name": "zk", "creationTimestamp": ago(3600)},
            "spec": {"minAvailable": 2},
            "status": {"disruptionsAllowed": 1}
        });
        assert_eq!(
            row("policy/PodDisruptionBudget", &pdb, NOW),
            [
                json!("zk"),
                json!("2"),
                json!("N/A"),
                json!(1),
                json!("60m")
            ]
        );
        let pct = json!({"metadata": {"name": "web"}, "spec": {"maxUnavailable": "25%"}});
        assert_eq!(
            row("PodDisruptionBudget", &pct, NOW)[1..4],
            [json!("N/A"), json!("25%"), json!(0)]
        );
    }
}
