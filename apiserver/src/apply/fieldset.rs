//! Field sets: the trees of field paths that `metadata.managedFields` records
//! (`fieldsV1`). A path element is kept in its encoded form (`f:<name>`,
//! `k:{"name":"c"}`, `v:<json>`, `i:<index>`), which orders and compares
//! exactly like the JSON keys of `fieldsV1`. Pure.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A set of paths. A node is a *member* when its own path is in the set; it
/// has children when longer paths through it are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set(BTreeMap<String, Entry>);

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    pub member: bool,
    pub children: Set,
}

/// `f:<name>`: a struct field or a map key.
pub fn field(name: &str) -> String {
    format!("f:{name}")
}

/// `v:<json>`: an element of a set list.
pub fn value(v: &Value) -> String {
    format!("v:{v}")
}

/// `k:{...}`: an element of a list map, by its key fields (sorted by name:
/// `serde_json::Map` keeps keys sorted).
pub fn key(fields: Map<String, Value>) -> String {
    format!("k:{}", Value::Object(fields))
}

pub fn index(i: usize) -> String {
    format!("i:{i}")
}

impl Set {
    pub fn new() -> Self {
        Set::default()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Adds `path` (and so its prefixes as parents) to the set.
    pub fn insert<S: AsRef<str>>(&mut self, path: &[S]) {
        let Some((first, rest)) = path.split_first() else {
            return;
        };
        let k = first.as_ref();
        // Look up before allocating: most inserts pass through existing nodes.
        if !self.0.contains_key(k) {
            self.0.insert(k.to_string(), Entry::default());
        }
        let e = self.0.get_mut(k).expect("just inserted");
        if rest.is_empty() {
            e.member = true;
        } else {
            e.children.insert(rest);
        }
    }

    /// Whether `path` itself is a member.
    pub fn has<S: AsRef<str>>(&self, path: &[S]) -> bool {
        let Some((first, rest)) = path.split_first() else {
            return false;
        };
        match self.0.get(first.as_ref()) {
            Some(e) if rest.is_empty() => e.member,
            Some(e) => e.children.has(rest),
            None => false,
        }
    }

    pub fn get(&self, element: &str) -> Option<&Entry> {
        self.0.get(element)
    }

    pub fn entry_mut(&mut self, element: &str) -> &mut Entry {
        self.0.entry(element.to_string()).or_default()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.0.iter()
    }

    pub fn remove(&mut self, element: &str) -> Option<Entry> {
        self.0.remove(element)
    }

    pub fn union_with(&mut self, other: &Set) {
        if self.0.is_empty() {
            self.0 = other.0.clone();
            return;
        }
        for (k, o) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            e.member |= o.member;
            e.children.union_with(&o.children);
        }
    }

    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Paths of `self` that are not members of `other`.
    pub fn difference(&self, other: &Set) -> Set {
        let mut out = BTreeMap::new();
        for (k, e) in &self.0 {
            let (member, children) = match other.0.get(k) {
                Some(o) => (e.member && !o.member, e.children.difference(&o.children)),
                None => (e.member, e.children.clone()),
            };
            if member || !children.is_empty() {
                out.insert(k.clone(), Entry { member, children });
            }
        }
        Set(out)
    }

    /// Paths that are members of both.
    pub fn intersection(&self, other: &Set) -> Set {
        let mut out = BTreeMap::new();
        for (k, e) in &self.0 {
            if let Some(o) = other.0.get(k) {
                let member = e.member && o.member;
                let children = e.children.intersection(&o.children);
                if member || !children.is_empty() {
                    out.insert(k.clone(), Entry { member, children });
                }
            }
        }
        Set(out)
    }

    /// Removes everything at and below these top-level elements.
    pub fn without(mut self, elements: &[&str]) -> Set {
        for e in elements {
            self.0.remove(*e);
        }
        self
    }

    /// Every member path, in order.
    pub fn paths(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect(&mut prefix, &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
        for (k, e) in &self.0 {
            prefix.push(k.clone());
            if e.member {
                out.push(prefix.clone());
            }
            e.children.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The `fieldsV1` form: `{"f:a": {".": {}, "f:b": {}}}`.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        for (k, e) in &self.0 {
            let mut inner = match e.children.to_fields_v1() {
                Value::Object(o) => o,
                _ => Map::new(),
            };
            if e.member && !inner.is_empty() {
                inner.insert(".".into(), Value::Object(Map::new()));
            }
            m.insert(k.clone(), Value::Object(inner));
        }
        Value::Object(m)
    }

    /// Reads a `fieldsV1` tree.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Some(obj) = v.as_object() else {
            return Err("fieldsV1 must be an object".into());
        };
        let mut out = BTreeMap::new();
        for (k, child) in obj {
            if k == "." {
                continue;
            }
            if !valid_element(k) {
                return Err(format!("unexpected path element {k:?}"));
            }
            let Some(c) = child.as_object() else {
                return Err(format!("{k}: expected an object"));
            };
            let member = c.is_empty() || c.contains_key(".");
            let children = Set::from_fields_v1(child)?;
            out.insert(k.clone(), Entry { member, children });
        }
        Ok(Set(out))
    }
}

fn valid_element(k: &str) -> bool {
    let Some((prefix, rest)) = k.split_once(':') else {
        return false;
    };
    match prefix {
        "f" => true,
        "i" => rest.parse::<usize>().is_ok(),
        "v" => serde_json::from_str::<Value>(rest).is_ok(),
        "k" => serde_json::from_str::<Value>(rest).is_ok_and(|v| v.is_object()),
        _ => false,
    }
}

/// A path the way upstream prints it in conflict messages:
/// `.spec.containers[name="c"].image`.
pub fn display(path: &[String]) -> String {
    let mut s = String::new();
    for pe in path {
        let (prefix, rest) = pe.split_once(':').unwrap_or(("f", pe));
        match prefix {
            "f" => {
                s.push('.');
                s.push_str(rest);
            }
            "k" => {
                let fields: Vec<String> = serde_json::from_str::<Map<String, Value>>(rest)
                    .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                    .unwrap_or_default();
                s.push('[');
                s.push_str(&fields.join(","));
                s.push(']');
            }
            "v" => {
                s.push_str("[=");
                s.push_str(rest);
                s.push(']');
            }
            _ => {
                s.push('[');
                s.push_str(rest);
                s.push(']');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fields_v1_round_trips_with_dot_for_members_with_children() {
        let mut s = Set::new();
        s.insert(&["f:metadata", "f:labels", "f:app"]);
        s.insert(&["f:metadata", "f:labels"]);
        s.insert(&["f:spec", "f:replicas"]);
        let v = s.to_fields_v1();
        assert_eq!(
            v,
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}})
        );
        assert_eq!(Set::from_fields_v1(&v).unwrap(), s);
        assert!(s.has(&["f:metadata", "f:labels"]));
        assert!(!s.has(&["f:metadata"]));
    }

    #[test]
    fn rejects_malformed_fields_v1() {
        assert!(Set::from_fields_v1(&json!({"x": {}})).is_err());
        assert!(Set::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(Set::from_fields_v1(&json!({"k:[1]": {}})).is_err());
        assert!(Set::from_fields_v1(&json!([])).is_err());
    }

    #[test]
    fn set_operations_are_member_wise() {
        let mut a = Set::new();
        a.insert(&["f:a", "f:b"]);
        a.insert(&["f:a"]);
        a.insert(&["f:c"]);
        let mut b = Set::new();
        b.insert(&["f:a", "f:b"]);
        let d = a.difference(&b);
        assert_eq!(d.paths(), vec![p(&["f:a"]), p(&["f:c"])]);
        assert_eq!(a.intersection(&b).paths(), vec![p(&["f:a", "f:b"])]);
        assert_eq!(b.union(&d), a);
        assert!(b.difference(&a).is_empty());
    }

    #[test]
    fn keys_and_values_encode_like_upstream() {
        let mut m = Map::new();
        m.insert("protocol".into(), json!("TCP"));
        m.insert("containerPort".into(), json!(80));
        assert_eq!(key(m), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
        assert_eq!(value(&json!("x")), r#"v:"x""#);
        let path = p(&[
            "f:spec",
            r#"k:{"containerPort":80,"protocol":"TCP"}"#,
            "f:name",
            r#"v:"a""#,
            "i:3",
        ]);
        assert_eq!(
            display(&path),
            r#".spec[containerPort=80,protocol="TCP"].name[="a"][3]"#
        );
    }
}
