//! Apply conflicts and the 409 Status upstream answers them with. Pure.

use serde_json::json;

use super::fieldset::{display, Set};
use super::managed::{Entry, Operation};
use crate::error::{ApiError, Details, Reason};

/// Conflicting fields, grouped by the manager that owns them.
#[derive(Debug, Default, PartialEq)]
pub struct Conflicts(Vec<(String, Vec<String>)>);

/// How upstream names a manager in messages: `"name"`, then
/// `with subresource "s"`, then for updaters `using <apiVersion>`.
fn describe(e: &Entry) -> String {
    let mut s = format!("{:?}", e.manager);
    if !e.subresource.is_empty() {
        s.push_str(&format!(" with subresource {:?}", e.subresource));
    }
    if e.operation == Operation::Update {
        s.push_str(&format!(" using {}", e.api_version));
    }
    s
}

impl Conflicts {
    pub fn add(&mut self, owner: &Entry, fields: &Set) {
        let paths = fields.paths().iter().map(|p| display(p)).collect();
        self.0.push((describe(owner), paths));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn count(&self) -> usize {
        self.0.iter().map(|(_, p)| p.len()).sum()
    }

    /// `Apply failed with 1 conflict: conflict with "m" using v1: .spec.x`, or
    /// for several, one `conflicts with "m":` line per manager (sorted) and
    /// a `- <path>` line per field.
    pub fn message(&self) -> String {
        if self.count() == 1 {
            let (m, p) = &self.0[0];
            return format!("Apply failed with 1 conflict: conflict with {m}: {}", p[0]);
        }
        let mut sorted: Vec<&(String, Vec<String>)> = self.0.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut lines = Vec::new();
        for (m, paths) in sorted {
            lines.push(format!("conflicts with {m}:"));
            for p in paths {
                lines.push(format!("- {p}"));
            }
        }
        format!(
            "Apply failed with {} conflicts: {}",
            self.count(),
            lines.join("\n")
        )
    }

    /// The 409 Status: reason Conflict, a `FieldManagerConflict` cause per field.
    pub fn into_error(self) -> ApiError {
        let mut e = ApiError::new(Reason::Conflict, self.message());
        let causes = self
            .0
            .iter()
            .flat_map(|(m, paths)| {
                paths.iter().map(move |p| {
                    json!({"reason": "FieldManagerConflict", "message": format!("conflict with {m}"), "field": p})
                })
            })
            .collect();
        e.details = Some(Box::new(Details {
            causes,
            ..Default::default()
        }));
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, op: Operation, sub: &str) -> Entry {
        Entry {
            manager: manager.into(),
            operation: op,
            api_version: "v1".into(),
            time: None,
            subresource: sub.into(),
            fields: Set::new(),
        }
    }

    #[test]
    fn messages_follow_upstream() {
        let mut one = Set::new();
        one.insert(&["f:spec", "f:replicas"]);
        let mut c = Conflicts::default();
        c.add(
            &entry("kubectl-client-side-apply", Operation::Update, ""),
            &one,
        );
        assert_eq!(
            c.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using v1: .spec.replicas"
        );
        let mut two = Set::new();
        two.insert(&["f:data", "f:a"]);
        two.insert(&["f:data", "f:b"]);
        c.add(&entry("applier", Operation::Apply, ""), &two);
        assert_eq!(
            c.message(),
            "Apply failed with 3 conflicts: conflicts with \"applier\":\n- .data.a\n- .data.b\nconflicts with \"kubectl-client-side-apply\" using v1:\n- .spec.replicas"
        );
        let e = c.into_error();
        assert_eq!(e.code(), 409);
        let causes = &e.details.as_ref().unwrap().causes;
        assert_eq!(causes.len(), 3);
        assert_eq!(causes[0]["reason"], "FieldManagerConflict");
        assert_eq!(causes[0]["field"], ".spec.replicas");
        assert_eq!(causes[1]["message"], "conflict with \"applier\"");
    }
}
