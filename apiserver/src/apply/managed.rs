//! `metadata.managedFields`: who owns which fields, updated on every write.
//! An `Update` (create, PUT, PATCH) gives its manager the fields it changed
//! and takes them from everyone else; an `Apply` gives its manager exactly
//! the fields of its configuration, merges that configuration into the live
//! object, removes what the manager applied before and no one owns any more,
//! and fails on changes to fields other managers own unless forced. Pure.

use serde_json::{json, Map, Value};

use super::conflict::Conflicts;
use super::fieldset::Set;
use super::merge;
use super::typed::{added_fields_v1, compare, to_field_set, Comparison, Ty};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub manager: String,
    pub operation: Operation,
    pub api_version: String,
    pub time: Option<String>,
    pub subresource: String,
    pub fields: Set,
}

impl Entry {
    /// Whether two entries record the same workflow: appliers are one
    /// workflow whatever version they applied at; updaters per version.
    pub fn same_owner(
        &self,
        manager: &str,
        op: Operation,
        subresource: &str,
        api_version: &str,
    ) -> bool {
        self.manager == manager
            && self.operation == op
            && self.subresource == subresource
            && (op == Operation::Apply || self.api_version == api_version)
    }
}

/// Who is writing.
#[derive(Clone, Copy, Debug)]
pub struct Writer<'a> {
    pub manager: &'a str,
    /// `""` for the main resource, else `status`, `scale`...
    pub subresource: &'a str,
    pub api_version: &'a str,
    pub now: &'a str,
}

/// Reads `managedFields` (`None`: absent or null).
pub fn decode(v: Option<&Value>) -> Result<Option<Vec<Entry>>, String> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let Some(items) = v.as_array() else {
        return Err("managedFields must be a list".into());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let s = |k: &str| {
            item.get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let operation = match s("operation").as_str() {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            "" if item.as_object().is_some_and(|o| o.is_empty()) => Operation::Update,
            other => return Err(format!("invalid operation {other:?}")),
        };
        let ft = s("fieldsType");
        if !ft.is_empty() && ft != "FieldsV1" {
            return Err(format!("invalid fieldsType {ft:?}"));
        }
        let fields = match item.get("fieldsV1") {
            Some(f) if !f.is_null() => Set::from_fields_v1(f)?,
            _ => Set::new(),
        };
        out.push(Entry {
            manager: s("manager"),
            operation,
            api_version: s("apiVersion"),
            time: item.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: s("subresource"),
            fields,
        });
    }
    Ok(Some(out))
}

/// The `managedFields` list, in upstream's order (appliers first, then by
/// time, manager, version, subresource); empty entries are dropped.
pub fn encode(entries: &[Entry]) -> Value {
    let mut sorted: Vec<&Entry> = entries.iter().filter(|e| !e.fields.is_empty()).collect();
    sorted.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    Value::Array(
        sorted
            .into_iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("manager".into(), json!(e.manager));
                m.insert("operation".into(), json!(e.operation.as_str()));
                m.insert("apiVersion".into(), json!(e.api_version));
                if let Some(t) = &e.time {
                    m.insert("time".into(), json!(t));
                }
                m.insert("fieldsType".into(), json!("FieldsV1"));
                m.insert("fieldsV1".into(), e.fields.to_fields_v1());
                if !e.subresource.is_empty() {
                    m.insert("subresource".into(), json!(e.subresource));
                }
                Value::Object(m)
            })
            .collect(),
    )
}

/// Metadata no manager owns: identity and server-set fields.
const SERVER_METADATA: &[&str] = &[
    "f:name",
    "f:namespace",
    "f:creationTimestamp",
    "f:selfLink",
    "f:uid",
    "f:clusterName",
    "f:generation",
    "f:managedFields",
    "f:resourceVersion",
];

/// Removes the paths no manager owns: type meta, server-set metadata and,
/// on the main resource, `status` (the main resource resets it).
pub fn strip(mut set: Set, subresource: &str) -> Set {
    set.remove("f:apiVersion");
    set.remove("f:kind");
    if subresource.is_empty() {
        set.remove("f:status");
    }
    if let Some(mut m) = set.remove("f:metadata") {
        m.member = false;
        m.children = m.children.without(SERVER_METADATA);
        if !m.children.is_empty() {
            *set.entry_mut("f:metadata") = m;
        }
    }
    set
}

/// What a newly created object is compared with: the objects every kind's
/// zero value already has, so that only what is added inside them counts.
fn baseline() -> &'static Value {
    static BASELINE: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    BASELINE.get_or_init(|| {
        json!({
            "metadata": {},
            "spec": {"template": {"metadata": {}, "spec": {}}, "strategy": {}, "updateStrategy": {}},
            "status": {},
        })
    })
}

fn managed_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata").and_then(|m| m.get("managedFields"))
}

fn set_managed(obj: &mut Value, entries: &[Entry]) {
    let encoded = encode(entries);
    let m = crate::meta::metadata_mut(obj);
    if encoded.as_array().is_some_and(|a| a.is_empty()) {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), encoded);
    }
}

/// Records an `Update` by `w` that turned `old` (`None`: a create) into
/// `new`, writing the result into `new`'s `managedFields`. A client may
/// write `managedFields` itself on the main resource (a list with entries
/// replaces them; `[{}]` clears them); otherwise the live ones are kept.
pub fn update(old: Option<&Value>, new: &mut Value, w: &Writer<'_>, ty: Ty) {
    let given = if w.subresource.is_empty() {
        decode(managed_of(new))
            .ok()
            .flatten()
            .filter(|e| !e.is_empty())
    } else {
        None
    };
    let mut entries = match given {
        Some(e) => e,
        None => old
            .map(|o| decode(managed_of(o)).ok().flatten().unwrap_or_default())
            .unwrap_or_default(),
    };
    if old.is_none() && entries.is_empty() && w.subresource.is_empty() {
        // A plain create: the entry is everything the new object sets.
        let fields = added_fields_v1(Some(baseline()), new, ty, &created_skip);
        let entry = (!fields.is_empty()).then(|| {
            json!({
                "manager": w.manager,
                "operation": "Update",
                "apiVersion": w.api_version,
                "time": w.now,
                "fieldsType": "FieldsV1",
                "fieldsV1": fields,
            })
        });
        let m = crate::meta::metadata_mut(new);
        match entry {
            Some(e) => m.insert("managedFields".into(), Value::Array(vec![e])),
            None => m.remove("managedFields"),
        };
        return;
    }
    let mut cmp = compare(Some(old.unwrap_or(baseline())), new, ty);
    cmp.strip(|s| strip(s, w.subresource));
    record_update(&mut entries, cmp, w);
    cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
    set_managed(new, &entries);
}

/// What [`strip`] removes from a create's fields on the main resource.
fn created_skip(path: &[&str], name: &str) -> bool {
    match path {
        [] => matches!(name, "apiVersion" | "kind" | "status"),
        ["metadata"] => SERVER_METADATA.iter().any(|f| &f[2..] == name),
        _ => false,
    }
}

fn record_update(entries: &mut Vec<Entry>, cmp: Comparison, w: &Writer<'_>) {
    let Comparison {
        added: mut changed,
        modified,
        removed,
    } = cmp;
    changed.union_with(&modified);
    let mine = |e: &Entry| e.same_owner(w.manager, Operation::Update, w.subresource, w.api_version);
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        e.fields = e.fields.difference(&changed).difference(&removed);
    }
    let pos = entries.iter().position(mine);
    let after = match pos {
        Some(i) => {
            let mut a = entries[i].fields.difference(&removed);
            a.union_with(&changed);
            a
        }
        None => changed,
    };
    let differs = match pos {
        Some(i) => entries[i].fields != after,
        None => !after.is_empty(),
    };
    if differs {
        let e = Entry {
            manager: w.manager.to_string(),
            operation: Operation::Update,
            api_version: w.api_version.to_string(),
            time: Some(w.now.to_string()),
            subresource: w.subresource.to_string(),
            fields: after,
        };
        match pos {
            Some(i) => entries[i] = e,
            None => entries.push(e),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
}

/// How many `Update` entries an object keeps before the oldest are folded
/// into per-version `ancient-changes` entries (upstream's limit), so a field
/// touched by many short-lived clients does not grow the object for ever.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// The manager name of the entries old updates are folded into.
pub const ANCIENT_CHANGES: &str = "ancient-changes";

/// Folds the oldest `Update` entries until at most `cap` remain. Entries
/// are taken oldest first (by time, then manager); the first one seen per
/// API version stays put until a second one of that version is folded,
/// when it becomes that version's `ancient-changes` entry and takes the
/// other's fields and (newer) time. `Apply` entries are never folded.
pub fn cap_update_managers(entries: &mut Vec<Entry>, cap: usize) {
    let is_update = |e: &Entry| e.operation == Operation::Update;
    let mut count = entries.iter().filter(|e| is_update(e)).count();
    // Every write comes here: nothing is allocated when under the cap.
    if count <= cap {
        return;
    }
    let mut updaters: Vec<usize> = (0..entries.len())
        .filter(|&i| is_update(&entries[i]))
        .collect();
    updaters.sort_by(|&a, &b| {
        let (a, b) = (&entries[a], &entries[b]);
        (&a.time, &a.manager).cmp(&(&b.time, &b.manager))
    });
    let is_bucket = |e: &Entry, version: &str| {
        e.manager == ANCIENT_CHANGES
            && e.operation == Operation::Update
            && e.subresource.is_empty()
            && e.api_version == version
    };
    let mut first_of_version: Vec<(String, usize)> = Vec::new();
    let mut folded = vec![false; entries.len()];
    for &i in &updaters {
        if count <= cap {
            break;
        }
        let version = entries[i].api_version.clone();
        let Some(&(_, first)) = first_of_version.iter().find(|(v, _)| *v == version) else {
            first_of_version.push((version, i));
            continue;
        };
        if is_bucket(&entries[i], &version) {
            // The bucket itself is the older of the two: the first entry
            // of its version goes into it, and it stands for the version.
            let fields = std::mem::take(&mut entries[first].fields);
            entries[i].fields.union_with(&fields);
            folded[first] = true;
            count -= 1;
            if let Some(f) = first_of_version.iter_mut().find(|(v, _)| *v == version) {
                f.1 = i;
            }
            continue;
        }
        let bucket =
            match (0..entries.len()).find(|&b| !folded[b] && is_bucket(&entries[b], &version)) {
                Some(b) => b,
                None => {
                    let f = &mut entries[first];
                    f.manager = ANCIENT_CHANGES.to_string();
                    f.subresource.clear();
                    first
                }
            };
        let fields = std::mem::take(&mut entries[i].fields);
        let time = entries[i].time.take();
        entries[bucket].fields.union_with(&fields);
        entries[bucket].time = time;
        folded[i] = true;
        count -= 1;
    }
    let mut k = 0;
    entries.retain(|_| {
        k += 1;
        !folded[k - 1]
    });
}

/// Why an apply failed.
#[derive(Debug, PartialEq)]
pub enum ApplyError {
    /// The configuration does not fit the schema (duplicate or missing keys).
    Invalid(String),
    Conflicts(Conflicts),
}

/// Applies `config` by `w` to `live` (`None`: the object does not exist)
/// and returns the new object with its `managedFields`.
pub fn apply(
    live: Option<&Value>,
    config: &Value,
    w: &Writer<'_>,
    force: bool,
    ty: Ty,
) -> Result<Value, ApplyError> {
    let applied = strip(
        to_field_set(config, ty).map_err(ApplyError::Invalid)?,
        w.subresource,
    );
    let mut entries = live
        .map(|l| decode(managed_of(l)).ok().flatten().unwrap_or_default())
        .unwrap_or_default();
    let empty = json!({});
    let live_obj = live.unwrap_or(&empty);
    let mut merged = merge::merge(live_obj, config, ty);
    let mine = |e: &Entry| e.same_owner(w.manager, Operation::Apply, w.subresource, w.api_version);
    let pos = entries.iter().position(mine);
    let last = pos.map(|i| entries[i].fields.clone()).unwrap_or_default();
    let mut owned = applied.clone();
    for e in entries.iter().filter(|e| !mine(e)) {
        owned.union_with(&e.fields);
    }
    merge::prune(&mut merged, &last.difference(&owned), &owned, ty);
    let mut cmp = compare(live, &merged, ty);
    cmp.strip(|s| strip(s, w.subresource));
    let changed = cmp.changed();
    let mut conflicts = Conflicts::default();
    for e in entries.iter().filter(|e| !mine(e)) {
        let c = e.fields.intersection(&changed);
        if !c.is_empty() {
            conflicts.add(e, &c);
        }
    }
    if !force && !conflicts.is_empty() {
        return Err(ApplyError::Conflicts(conflicts));
    }
    for e in entries.iter_mut().filter(|e| !mine(e)) {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }
    let object_changed = live.is_none_or(|l| {
        let mut a = l.clone();
        let mut b = merged.clone();
        for o in [&mut a, &mut b] {
            if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
                m.remove("managedFields");
                m.remove("resourceVersion");
            }
        }
        a != b
    });
    let time = match pos {
        Some(i) if !object_changed && entries[i].fields == applied => entries[i].time.clone(),
        _ => Some(w.now.to_string()),
    };
    let e = Entry {
        manager: w.manager.to_string(),
        operation: Operation::Apply,
        api_version: w.api_version.to_string(),
        time,
        subresource: w.subresource.to_string(),
        fields: applied,
    };
    match pos {
        Some(i) => entries[i] = e,
        None => entries.push(e),
    }
    entries.retain(|e| !e.fields.is_empty());
    cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
    set_managed(&mut merged, &entries);
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-01-01T00:00:00Z";

    fn w(manager: &'static str) -> Writer<'static> {
        Writer {
            manager,
            subresource: "",
            api_version: "apps/v1",
            now: NOW,
        }
    }

    fn ty() -> Ty {
        Ty::root("apps/v1", "Deployment")
    }

    fn deployment(replicas: i64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "default", "labels": {"app": "x"}},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "x"}},
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": image}]}}
            },
            "status": {"replicas": 0}
        })
    }

    fn fields_of(obj: &Value, manager: &str) -> Value {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["manager"] == manager)
            .map(|e| e["fieldsV1"].clone())
            .unwrap_or(Value::Null)
    }

    #[test]
    fn create_records_an_update_entry_like_upstream() {
        let mut obj = deployment(1, "nginx");
        update(None, &mut obj, &w("kubectl-create"), ty());
        let mf = &obj["metadata"]["managedFields"][0];
        assert_eq!(mf["manager"], "kubectl-create");
        assert_eq!(mf["operation"], "Update");
        assert_eq!(mf["apiVersion"], "apps/v1");
        assert_eq!(mf["time"], NOW);
        assert_eq!(mf["fieldsType"], "FieldsV1");
        assert!(mf.get("subresource").is_none());
        assert_eq!(
            mf["fieldsV1"],
            json!({
                "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {
                    "f:replicas": {}, "f:selector": {},
                    "f:strategy": {"f:type": {}, "f:rollingUpdate": {".": {}, "f:maxSurge": {}}},
                    "f:template": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:containers": {"k:{\"name\":\"c\"}": {".": {}, "f:name": {}, "f:image": {}}}}}
                }
            })
        );
    }

    #[test]
    fn the_create_fast_path_matches_the_general_comparison() {
        let objects = [
            (deployment(1, "nginx"), ty()),
            (
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "uid": "u", "labels": {"a": "b"}, "finalizers": ["x/y"]},
                       "spec": {"containers": [{"name": "c", "image": "i", "resources": {}, "ports": [{"containerPort": 1}], "args": ["a"]}],
                                "securityContext": {}, "nodeSelector": {"k": "v"}, "tolerations": [{"key": "k"}], "x": null},
                       "status": {"phase": "Pending"}}),
                Ty::root("v1", "Pod"),
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "annotations": {}}, "data": {"a": "1"}}),
                Ty::root("v1", "ConfigMap"),
            ),
            (
                json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"}, "spec": {"a": {"b": [1]}, "c": {}}}),
                Ty::root("x/v1", "W"),
            ),
        ];
        for (obj, ty) in objects {
            let mut fast = obj.clone();
            update(None, &mut fast, &w("m"), ty);
            let mut cmp = compare(Some(baseline()), &obj, ty);
            cmp.strip(|s| strip(s, ""));
            let mut slow = obj.clone();
            let mut entries = Vec::new();
            record_update(&mut entries, cmp, &w("m"));
            set_managed(&mut slow, &entries);
            assert_eq!(fast, slow, "{obj:#}");
        }
    }

    #[test]
    fn updates_move_ownership_and_noops_change_nothing() {
        let mut v1 = deployment(1, "nginx");
        update(None, &mut v1, &w("a"), ty());
        let mut v2 = v1.clone();
        v2["spec"]["replicas"] = json!(3);
        let w2 = Writer {
            subresource: "scale",
            ..w("kubectl-scale")
        };
        update(Some(&v1), &mut v2, &w2, ty());
        assert_eq!(
            fields_of(&v2, "kubectl-scale"),
            json!({"f:spec": {"f:replicas": {}}})
        );
        assert!(fields_of(&v2, "a")["f:spec"].get("f:replicas").is_none());
        assert_eq!(v2["metadata"]["managedFields"][1]["subresource"], "scale");
        let mut v3 = v2.clone();
        update(
            Some(&v2),
            &mut v3,
            &Writer {
                now: "later",
                ..w("b")
            },
            ty(),
        );
        assert_eq!(v3, v2);
        // A client clearing managedFields with one empty entry.
        let mut v4 = v2.clone();
        v4["metadata"]["managedFields"] = json!([{}]);
        update(Some(&v2), &mut v4, &w("c"), ty());
        assert!(v4["metadata"].get("managedFields").is_none());
        // An empty list keeps the live entries.
        let mut v5 = v2.clone();
        v5["metadata"]["managedFields"] = json!([]);
        update(Some(&v2), &mut v5, &w("c"), ty());
        assert_eq!(v5, v2);
    }

    #[test]
    fn apply_creates_then_conflicts_then_forces() {
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"replicas": 2}});
        let created = apply(None, &cfg, &w("kubectl"), false, ty()).unwrap();
        assert_eq!(created["spec"]["replicas"], 2);
        assert_eq!(
            created["metadata"]["managedFields"][0]["operation"],
            "Apply"
        );
        assert_eq!(
            fields_of(&created, "kubectl"),
            json!({"f:spec": {"f:replicas": {}}})
        );
        let mut scaled = created.clone();
        scaled["spec"]["replicas"] = json!(5);
        update(
            Some(&created),
            &mut scaled,
            &Writer {
                subresource: "scale",
                ..w("kubectl-scale")
            },
            ty(),
        );
        // Same value again: no conflict (the scaler's value is 5, not 2).
        let err = apply(Some(&scaled), &cfg, &w("kubectl"), false, ty()).unwrap_err();
        let ApplyError::Conflicts(c) = err else {
            panic!()
        };
        assert_eq!(
            c.message(),
            "Apply failed with 1 conflict: conflict with \"kubectl-scale\" with subresource \"scale\" using apps/v1: .spec.replicas"
        );
        let forced = apply(Some(&scaled), &cfg, &w("kubectl"), true, ty()).unwrap();
        assert_eq!(forced["spec"]["replicas"], 2);
        assert_eq!(
            forced["metadata"]["managedFields"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn applying_the_same_value_shares_and_dropping_a_field_removes_it() {
        let base = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"a": "1", "b": "2"}}, "spec": {"replicas": 2}});
        let one = apply(None, &base, &w("one"), false, ty()).unwrap();
        let two_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "labels": {"b": "2"}}});
        let two = apply(Some(&one), &two_cfg, &w("two"), false, ty()).unwrap();
        assert_eq!(
            fields_of(&two, "two"),
            json!({"f:metadata": {"f:labels": {"f:b": {}}}})
        );
        assert!(fields_of(&two, "one")["f:metadata"]["f:labels"]
            .get("f:b")
            .is_some());
        // "one" stops applying both labels and replicas: a goes, b (shared) stays.
        let one_cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"paused": true}});
        let three = apply(Some(&two), &one_cfg, &w("one"), false, ty()).unwrap();
        assert_eq!(three["metadata"]["labels"], json!({"b": "2"}));
        assert!(three["spec"].get("replicas").is_none());
        assert_eq!(three["spec"]["paused"], true);
    }

    #[test]
    fn status_applies_are_their_own_manager_and_keep_status() {
        let live = deployment(1, "nginx");
        let cfg = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "status": {"replicas": 3}});
        let sw = Writer {
            subresource: "status",
            ..w("kubectl")
        };
        let out = apply(Some(&live), &cfg, &sw, false, ty()).unwrap();
        assert_eq!(out["status"]["replicas"], 3);
        let e = &out["metadata"]["managedFields"][0];
        assert_eq!(e["subresource"], "status");
        assert_eq!(e["fieldsV1"], json!({"f:status": {"f:replicas": {}}}));
        // The same manager on the main resource is another entry.
        let main = apply(Some(&out), &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {"paused": true}}), &w("kubectl"), false, ty()).unwrap();
        assert_eq!(
            main["metadata"]["managedFields"].as_array().unwrap().len(),
            2
        );
        assert_eq!(main["status"]["replicas"], 3);
    }

    #[test]
    fn list_items_merge_by_key_and_unapplied_items_go_unless_co_owned() {
        let pod = Ty::root("v1", "Pod");
        let pw = Writer {
            api_version: "v1",
            ..w("a")
        };
        let two = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "x", "image": "1", "env": [{"name": "E", "value": "v"}]},
            {"name": "y", "image": "2"},
            {"name": "z", "image": "3"}
        ]}});
        let live = apply(None, &two, &pw, false, pod).unwrap();
        // Someone else changes y's image: y's image is theirs now.
        let mut edited = live.clone();
        edited["spec"]["containers"][1]["image"] = json!("2b");
        update(
            Some(&live),
            &mut edited,
            &Writer {
                api_version: "v1",
                ..w("editor")
            },
            pod,
        );
        // "a" now applies only x (without env): y and z go (nobody else
        // owns the elements themselves), and so does x's emptied env.
        let one = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "x", "image": "1"}]}});
        let out = apply(Some(&edited), &one, &pw, false, pod).unwrap();
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "x", "image": "1"}])
        );
    }

    fn entry(manager: &str, api_version: &str, time: &str, field: &str) -> Entry {
        let mut fields = Set::new();
        fields.insert(&["f:spec".to_string(), format!("f:{field}")]);
        Entry {
            manager: manager.into(),
            operation: Operation::Update,
            api_version: api_version.into(),
            time: Some(time.into()),
            subresource: String::new(),
            fields,
        }
    }

    #[test]
    fn more_than_ten_updaters_fold_the_oldest_into_ancient_changes_per_version() {
        let t = |i: usize| format!("2026-01-01T00:00:{i:02}Z");
        let mut entries: Vec<Entry> = (0..12)
            .map(|i| entry(&format!("m{i}"), "apps/v1", &t(i), &format!("f{i}")))
            .collect();
        let mut apply = entry("kubectl", "apps/v1", &t(0), "applied");
        apply.operation = Operation::Apply;
        entries.push(apply);
        cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
        let names: Vec<&str> = entries.iter().map(|e| e.manager.as_str()).collect();
        assert_eq!(
            names,
            [
                "ancient-changes",
                "m3",
                "m4",
                "m5",
                "m6",
                "m7",
                "m8",
                "m9",
                "m10",
                "m11",
                "kubectl"
            ]
        );
        let bucket = &entries[0];
        assert_eq!(bucket.time.as_deref(), Some(t(2).as_str()));
        for f in ["f0", "f1", "f2"] {
            assert!(bucket.fields.has(&["f:spec", &format!("f:{f}")]), "{f}");
        }
        // Ten or fewer: nothing changes; a second run keeps one bucket.
        let before = entries.clone();
        cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
        assert_eq!(entries, before);
        entries.push(entry("m12", "apps/v1", &t(12), "f12"));
        cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
        let names: Vec<&str> = entries.iter().map(|e| e.manager.as_str()).collect();
        assert_eq!(
            names.iter().filter(|n| **n == "ancient-changes").count(),
            1,
            "{names:?}"
        );
        assert_eq!(entries.len(), 11);
        assert!(entries[0].fields.has(&["f:spec", "f:f3"]));
    }

    #[test]
    fn folding_keeps_one_bucket_per_api_version() {
        let t = |i: usize| format!("2026-01-01T00:00:{i:02}Z");
        let mut entries: Vec<Entry> = (0..12)
            .map(|i| {
                let v = if i % 2 == 0 { "v1" } else { "v2" };
                entry(&format!("m{i}"), v, &t(i), &format!("f{i}"))
            })
            .collect();
        cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
        assert_eq!(entries.len(), 10);
        let buckets: Vec<(&str, &str)> = entries
            .iter()
            .filter(|e| e.manager == ANCIENT_CHANGES)
            .map(|e| (e.api_version.as_str(), e.time.as_deref().unwrap()))
            .collect();
        // m0 (v1) and m1 (v2) are the first of their versions; m2 folds
        // into v1's bucket, m3 into v2's.
        assert_eq!(
            buckets,
            [
                ("v1", "2026-01-01T00:00:02Z"),
                ("v2", "2026-01-01T00:00:03Z")
            ]
        );
    }

    #[test]
    fn an_existing_bucket_takes_older_entries_of_its_version() {
        let t = |i: usize| format!("2026-01-01T00:00:{i:02}Z");
        let mut entries: Vec<Entry> = (0..12)
            .map(|i| {
                let m = if i == 1 {
                    ANCIENT_CHANGES.to_string()
                } else {
                    format!("m{i}")
                };
                entry(&m, "v1", &t(i), &format!("f{i}"))
            })
            .collect();
        cap_update_managers(&mut entries, MAX_UPDATE_MANAGERS);
        assert_eq!(entries.len(), 10);
        assert_eq!(entries[0].manager, ANCIENT_CHANGES);
        assert_eq!(entries[0].time.as_deref(), Some(t(2).as_str()));
        for f in ["f0", "f1", "f2"] {
            assert!(entries[0].fields.has(&["f:spec", &format!("f:{f}")]), "{f}");
        }
    }

    #[test]
    fn strip_drops_server_fields() {
        let s = to_field_set(
            &json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "n", "uid": "u", "labels": {"a": "b"}}, "status": {"x": 1}}),
            Ty::root("v1", "Pod"),
        )
        .unwrap();
        assert_eq!(
            strip(s.clone(), "").to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:a": {}}}})
        );
        assert_eq!(
            strip(s, "status").to_fields_v1(),
            json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:status": {"f:x": {}}})
        );
    }
}
