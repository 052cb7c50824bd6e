//! The garbage collector's decisions over a snapshot of objects, without
//! IO: which dependents lost every owner (delete them), which dependents of
//! an owner deleted with `orphan` must drop their reference, and when a
//! `foregroundDeletion` owner may go.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::DynamicObject;

/// An object the collector knows about, by (kind, namespace, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub kind: String,
    pub namespace: String,
    pub name: String,
}

pub fn key_of(kind: &str, obj: &DynamicObject) -> Key {
    Key {
        kind: kind.to_string(),
        namespace: obj.metadata.namespace.clone().unwrap_or_default(),
        name: obj.metadata.name.clone().unwrap_or_default(),
    }
}

/// Everything watched, with each object's kind.
#[derive(Default)]
pub struct Snapshot {
    pub objects: BTreeMap<Key, DynamicObject>,
    /// Kinds whose objects are all in `objects` (their watch has synced);
    /// an owner of another kind is never presumed absent.
    pub known_kinds: BTreeSet<String>,
    /// Kinds that are cluster-scoped (their owners' references carry no
    /// namespace).
    pub cluster_scoped: BTreeSet<String>,
}

/// What the collector should do.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Delete the dependent (background): its owners are all gone.
    Delete { key: Key, uid: String },
    /// Remove the references to `owner_uid` from the dependent.
    DropReference { key: Key, owner_uid: String },
    /// Delete the dependent in the foreground, for an owner waiting on it.
    DeleteForeground { key: Key, uid: String },
    /// Remove `finalizer` from the owner: its part is done.
    RemoveFinalizer { key: Key, finalizer: &'static str },
}

fn finalizers(obj: &DynamicObject) -> &[String] {
    obj.metadata.finalizers.as_deref().unwrap_or(&[])
}

fn owner_key(snapshot: &Snapshot, dependent: &Key, r: &OwnerReference) -> Key {
    Key {
        kind: r.kind.clone(),
        namespace: if snapshot.cluster_scoped.contains(&r.kind) {
            String::new()
        } else {
            dependent.namespace.clone()
        },
        name: r.name.clone(),
    }
}

/// Whether the snapshot shows the owner `r` of `dependent` to be gone (its
/// kind is watched and no object with that name and uid is there).
/// Callers confirm with a live read before deleting anything.
pub fn owner_absent(snapshot: &Snapshot, dependent: &Key, r: &OwnerReference) -> bool {
    if !snapshot.known_kinds.contains(&r.kind) {
        return false;
    }
    match snapshot.objects.get(&owner_key(snapshot, dependent, r)) {
        Some(o) => o.metadata.uid.as_deref() != Some(r.uid.as_str()),
        None => true,
    }
}

pub fn plan(snapshot: &Snapshot) -> Vec<Step> {
    let mut steps = Vec::new();
    // Dependents of each owner uid.
    let mut dependents: BTreeMap<&str, Vec<(&Key, &DynamicObject, &OwnerReference)>> =
        BTreeMap::new();
    for (key, obj) in &snapshot.objects {
        for r in obj.metadata.owner_references.iter().flatten() {
            dependents
                .entry(r.uid.as_str())
                .or_default()
                .push((key, obj, r));
        }
    }
    for (key, obj) in &snapshot.objects {
        let uid = obj.metadata.uid.clone().unwrap_or_default();
        let deleting = obj.metadata.deletion_timestamp.is_some();
        let mine = dependents.get(uid.as_str()).cloned().unwrap_or_default();
        if deleting && finalizers(obj).iter().any(|f| f == "orphan") {
            for (dk, _, _) in &mine {
                steps.push(Step::DropReference {
                    key: (*dk).clone(),
                    owner_uid: uid.clone(),
                });
            }
            if mine.is_empty() {
                steps.push(Step::RemoveFinalizer {
                    key: key.clone(),
                    finalizer: "orphan",
                });
            }
        }
        if deleting && finalizers(obj).iter().any(|f| f == "foregroundDeletion") {
            let mut blocking = 0;
            for (dk, dep, r) in &mine {
                if r.block_owner_deletion == Some(true) {
                    blocking += 1;
                }
                if dep.metadata.deletion_timestamp.is_none() {
                    steps.push(Step::DeleteForeground {
                        key: (*dk).clone(),
                        uid: dep.metadata.uid.clone().unwrap_or_default(),
                    });
                }
            }
            if blocking == 0 {
                steps.push(Step::RemoveFinalizer {
                    key: key.clone(),
                    finalizer: "foregroundDeletion",
                });
            }
        }
        // A dependent all of whose owners are gone goes too; one that
        // keeps some owner only loses the dangling references.
        let refs = obj.metadata.owner_references.as_deref().unwrap_or(&[]);
        if refs.is_empty() || deleting {
            continue;
        }
        let absent: Vec<&OwnerReference> = refs
            .iter()
            .filter(|r| owner_absent(snapshot, key, r))
            .collect();
        if absent.len() == refs.len() {
            steps.push(Step::Delete {
                key: key.clone(),
                uid,
            });
        } else {
            for r in absent {
                steps.push(Step::DropReference {
                    key: key.clone(),
                    owner_uid: r.uid.clone(),
                });
            }
        }
    }
    steps
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use kube::api::ObjectMeta;

    fn obj(name: &str, uid: &str, owners: &[(&str, &str, &str, bool)]) -> DynamicObject {
        DynamicObject {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(uid.into()),
                owner_references: (!owners.is_empty()).then(|| {
                    owners
                        .iter()
                        .map(|(kind, name, uid, block)| OwnerReference {
                            kind: kind.to_string(),
                            name: name.to_string(),
                            uid: uid.to_string(),
                            api_version: "v1".into(),
                            controller: Some(true),
                            block_owner_deletion: Some(*block),
                        })
                        .collect()
                }),
                ..Default::default()
            },
            data: serde_json::Value::Null,
        }
    }

    fn snapshot(items: Vec<(&str, DynamicObject)>) -> Snapshot {
        let mut s = Snapshot::default();
        for (kind, o) in items {
            s.known_kinds.insert(kind.to_string());
            s.objects.insert(key_of(kind, &o), o);
        }
        s
    }

    fn deleting(mut o: DynamicObject, finalizer: &str) -> DynamicObject {
        o.metadata.deletion_timestamp = Some(Time(Timestamp::now()));
        o.metadata.finalizers = Some(vec![finalizer.into()]);
        o
    }

    #[test]
    fn dependents_of_a_gone_owner_are_deleted_and_live_ones_kept() {
        let s = snapshot(vec![
            ("ReplicationController", obj("rc", "u-rc", &[])),
            (
                "Pod",
                obj(
                    "kept",
                    "u1",
                    &[("ReplicationController", "rc", "u-rc", true)],
                ),
            ),
            (
                "Pod",
                obj(
                    "orphaned",
                    "u2",
                    &[("ReplicationController", "gone", "u-x", true)],
                ),
            ),
            // Same name, other uid: a new owner, not ours.
            (
                "Pod",
                obj(
                    "stale",
                    "u3",
                    &[("ReplicationController", "rc", "u-old", true)],
                ),
            ),
            // An owner kind nobody watches is never presumed gone.
            ("Pod", obj("foreign", "u4", &[("Widget", "w", "u-w", true)])),
        ]);
        let steps = plan(&s);
        let deleted: Vec<&str> = steps
            .iter()
            .filter_map(|st| match st {
                Step::Delete { key, .. } => Some(key.name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(deleted, ["orphaned", "stale"]);
    }

    #[test]
    fn orphan_and_foreground_finalizers() {
        let s = snapshot(vec![
            (
                "ReplicationController",
                deleting(obj("o", "u-o", &[]), "orphan"),
            ),
            (
                "Pod",
                obj("a", "u1", &[("ReplicationController", "o", "u-o", true)]),
            ),
        ]);
        assert_eq!(
            plan(&s),
            [Step::DropReference {
                key: key_of("Pod", &obj("a", "u1", &[])),
                owner_uid: "u-o".into()
            }]
        );
        let s = snapshot(vec![(
            "ReplicationController",
            deleting(obj("o", "u-o", &[]), "orphan"),
        )]);
        assert!(matches!(
            plan(&s)[..],
            [Step::RemoveFinalizer {
                finalizer: "orphan",
                ..
            }]
        ));
        let s = snapshot(vec![
            (
                "ReplicaSet",
                deleting(obj("f", "u-f", &[]), "foregroundDeletion"),
            ),
            ("Pod", obj("b", "u2", &[("ReplicaSet", "f", "u-f", true)])),
        ]);
        assert!(matches!(plan(&s)[..], [Step::DeleteForeground { .. }]));
        let s = snapshot(vec![(
            "ReplicaSet",
            deleting(obj("f", "u-f", &[]), "foregroundDeletion"),
        )]);
        assert!(matches!(
            plan(&s)[..],
            [Step::RemoveFinalizer {
                finalizer: "foregroundDeletion",
                ..
            }]
        ));
    }
}
