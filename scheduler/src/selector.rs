//! Label selectors (`metav1.LabelSelector`) read once and matched many
//! times: the pod selectors of inter-pod affinity terms and topology spread
//! constraints, and the namespace selectors of affinity terms.
//!
//! As upstream reads them: no selector at all selects nothing, an empty
//! one (`{}`) selects everything, `matchLabels` entries are equality
//! requirements, and expressions are `In`, `NotIn`, `Exists`,
//! `DoesNotExist`. A selector the API server would reject (an unknown
//! operator, `In` without values, `Exists` with values) selects nothing
//! here, where upstream's plugin would fail the attempt with an error.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Requirement {
    key: String,
    op: Op,
}

impl Requirement {
    fn matches(&self, labels: &Labels) -> bool {
        let have = labels.get(&self.key);
        match &self.op {
            Op::In(values) => have.is_some_and(|v| values.contains(v)),
            Op::NotIn(values) => !have.is_some_and(|v| values.contains(v)),
            Op::Exists => have.is_some(),
            Op::DoesNotExist => have.is_none(),
        }
    }
}

/// A parsed label selector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// Selects nothing at all (no selector given, or an invalid one).
    nothing: bool,
    /// All must hold; none selects everything.
    requirements: Vec<Requirement>,
}

static NO_LABELS: Labels = BTreeMap::new();

impl Selector {
    pub fn nothing() -> Selector {
        Selector {
            nothing: true,
            requirements: Vec::new(),
        }
    }

    pub fn everything() -> Selector {
        Selector {
            nothing: false,
            requirements: Vec::new(),
        }
    }

    /// Reads an API selector; `None` selects nothing.
    pub fn new(selector: Option<&LabelSelector>) -> Selector {
        let Some(selector) = selector else {
            return Selector::nothing();
        };
        let mut requirements = Vec::new();
        for (key, value) in selector.match_labels.iter().flatten() {
            requirements.push(Requirement {
                key: key.clone(),
                op: Op::In(vec![value.clone()]),
            });
        }
        for e in selector.match_expressions.iter().flatten() {
            let values = e.values.clone().unwrap_or_default();
            let op = match (e.operator.as_str(), values.is_empty()) {
                ("In", false) => Op::In(values),
                ("NotIn", false) => Op::NotIn(values),
                ("Exists", true) => Op::Exists,
                ("DoesNotExist", true) => Op::DoesNotExist,
                _ => return Selector::nothing(),
            };
            requirements.push(Requirement {
                key: e.key.clone(),
                op,
            });
        }
        Selector {
            nothing: false,
            requirements,
        }
    }

    /// Adds `key = value` (how `matchLabelKeys` narrow a selector).
    pub fn and_equal(&mut self, key: &str, value: &str) {
        self.requirements.push(Requirement {
            key: key.to_string(),
            op: Op::In(vec![value.to_string()]),
        });
    }

    /// Whether `labels` (none: no labels) are selected.
    pub fn matches(&self, labels: Option<&Labels>) -> bool {
        let labels = labels.unwrap_or(&NO_LABELS);
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Upstream's `Selector.Empty()`: no requirements, so everything is
    /// selected.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    pub fn is_nothing(&self) -> bool {
        self.nothing
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    pub(crate) fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn match_labels(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(pairs)),
            ..Default::default()
        }
    }

    pub(crate) fn expression(key: &str, op: &str, values: &[&str]) -> LabelSelector {
        LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: key.into(),
                operator: op.into(),
                values: (!values.is_empty())
                    .then(|| values.iter().map(|v| v.to_string()).collect()),
            }]),
            ..Default::default()
        }
    }

    #[test]
    fn absent_selects_nothing_and_empty_everything() {
        let l = labels(&[("app", "web")]);
        assert!(!Selector::new(None).matches(Some(&l)));
        let empty = Selector::new(Some(&LabelSelector::default()));
        assert!(empty.matches(Some(&l)));
        assert!(empty.matches(None));
        assert!(empty.is_empty());
        assert!(!Selector::new(None).is_empty());
    }

    #[test]
    fn labels_and_expressions_are_anded() {
        let web = labels(&[("app", "web"), ("tier", "front")]);
        let db = labels(&[("app", "db")]);
        let s = Selector::new(Some(&match_labels(&[("app", "web")])));
        assert!(s.matches(Some(&web)));
        assert!(!s.matches(Some(&db)));
        assert!(!s.matches(None));
        let cases = [
            (expression("app", "In", &["web", "api"]), true, false),
            (expression("app", "NotIn", &["web"]), false, true),
            (expression("tier", "NotIn", &["back"]), true, true),
            (expression("tier", "Exists", &[]), true, false),
            (expression("tier", "DoesNotExist", &[]), false, true),
            (expression("app", "In", &[]), false, false),
            (expression("app", "Exists", &["web"]), false, false),
            (expression("app", "Like", &["web"]), false, false),
        ];
        for (sel, on_web, on_db) in cases {
            let s = Selector::new(Some(&sel));
            assert_eq!(s.matches(Some(&web)), on_web, "{sel:?}");
            assert_eq!(s.matches(Some(&db)), on_db, "{sel:?}");
        }
        let mut s = Selector::new(Some(&expression("tier", "Exists", &[])));
        s.and_equal("app", "db");
        assert!(!s.matches(Some(&web)));
        assert!(!s.is_empty());
    }
}
