//! Patch metadata schema for strategic merge patch.
//!
//! This module owns the *types* of the structural table that drives
//! [`super::strategic`] and the lookups over it. The table itself lives in
//! `patch_schema_generated.rs`, produced by `gen_patch_schema.py` from the upstream
//! v1.33 OpenAPI definitions: for every definition reachable from the served kinds it
//! records which fields are objects, lists or maps, what their elements are, and the
//! `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` extensions. Scalar
//! fields are not listed: a field missing from a definition is patched like an
//! unknown field (objects merge, everything else is replaced), which is exactly how
//! scalars behave.

use super::patch_schema_generated::{DEFS, ROOTS};

/// The `x-kubernetes-patch-strategy` of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// No strategy: objects merge, lists are replaced wholesale.
    Unset,
    /// Lists merge element-wise (by merge key, or as a set for primitives).
    Merge,
    /// The value is replaced wholesale, even when it is an object.
    Replace,
    /// Objects merge; clients send `$retainKeys` to clear keys they no longer set.
    RetainKeys,
    /// `merge` plus `retainKeys` (e.g. `PodSpec.volumes`).
    MergeRetainKeys,
}

impl Strategy {
    /// Whether lists with this strategy merge element-wise instead of being replaced.
    pub fn merges_lists(self) -> bool {
        matches!(self, Strategy::Merge | Strategy::MergeRetainKeys)
    }

    /// Whether clients are expected to send `$retainKeys` for this field. The server
    /// honours `$retainKeys` wherever it appears; this only matters when computing
    /// patches.
    pub fn retains_keys(self) -> bool {
        matches!(self, Strategy::RetainKeys | Strategy::MergeRetainKeys)
    }

    /// The upstream spelling of the strategy, as found in the OpenAPI extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Unset => "",
            Strategy::Merge => "merge",
            Strategy::Replace => "replace",
            Strategy::RetainKeys => "retainKeys",
            Strategy::MergeRetainKeys => "merge,retainKeys",
        }
    }
}

/// The element type of a list, or the value type of a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Elem {
    /// A primitive (string, number, bool) or a value without structure
    /// (Quantity, IntOrString, Time, RawExtension...).
    Scalar,
    /// An object described by the definition at this index of the table.
    Def(u16),
    /// A list of primitives (e.g. `map[string][]string`).
    Scalars,
}

/// The shape of a non-scalar field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// An object described by the definition at this index of the table.
    Obj(u16),
    /// A list whose elements are [`Elem`].
    List(Elem),
    /// A map with arbitrary keys whose values are [`Elem`] (`additionalProperties`).
    Map(Elem),
    /// An object without declared structure that still carries a patch strategy.
    Opaque,
}

/// `x-kubernetes-list-type` (with `x-kubernetes-list-map-keys`) of a list field,
/// used by server-side apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListType {
    /// Not declared.
    Unset,
    /// The list is one value, replaced wholesale.
    Atomic,
    /// A set of scalars.
    Set,
    /// A list of objects identified by these key fields.
    Map(&'static [&'static str]),
}

/// `x-kubernetes-map-type` of a field (overrides the definition's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapType {
    Unset,
    Atomic,
    Granular,
}

/// One field of a definition, as recorded by the generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchField {
    /// JSON field name.
    pub name: &'static str,
    /// What the field holds.
    pub shape: Shape,
    /// `x-kubernetes-patch-strategy`.
    pub strategy: Strategy,
    /// `x-kubernetes-patch-merge-key` (lists of objects with the merge strategy).
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type` / `x-kubernetes-list-map-keys`.
    pub list_type: ListType,
    /// `x-kubernetes-map-type` declared on the field.
    pub map_type: MapType,
}

/// A definition: its OpenAPI name and its non-scalar fields, sorted by name.
#[derive(Debug)]
pub struct PatchDef {
    /// Full OpenAPI definition name, e.g. `io.k8s.api.core.v1.Pod`.
    pub name: &'static str,
    /// `x-kubernetes-map-type: atomic` on the definition: the object is one value.
    pub atomic: bool,
    /// Non-scalar fields, sorted by name.
    pub fields: &'static [PatchField],
}

impl PatchDef {
    /// The recorded field with this JSON name, if it is a non-scalar field.
    pub fn field(&self, name: &str) -> Option<&'static PatchField> {
        let fields: &'static [PatchField] = self.fields;
        fields
            .binary_search_by(|f| f.name.cmp(name))
            .ok()
            .map(|i| &fields[i])
    }
}

/// The definition at `index` in the generated table.
///
/// Indices come from [`Shape::Obj`] / [`Elem::Def`] of the same table, so they are
/// always in range.
pub fn definition_at(index: u16) -> &'static PatchDef {
    &DEFS[usize::from(index)]
}

/// Look a definition up by its full OpenAPI name (e.g. `io.k8s.api.apps.v1.Deployment`).
pub fn definition(name: &str) -> Option<&'static PatchDef> {
    DEFS.iter().find(|d| d.name == name)
}

/// All definitions of the table.
pub fn definitions() -> &'static [PatchDef] {
    &DEFS
}

/// The schema root (full definition name) for a served kind, e.g.
/// `root_for("apps/v1", "Deployment") == Some("io.k8s.api.apps.v1.Deployment")`.
///
/// Returns `None` for kinds without strategic merge patch metadata (custom
/// resources, or built-in kinds not yet covered by the table).
pub fn root_for(api_version: &str, kind: &str) -> Option<&'static str> {
    ROOTS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, index)| definition_at(*index).name)
}

/// The schema root definition of a served kind (see [`root_for`]).
pub fn root_definition(api_version: &str, kind: &str) -> Option<&'static PatchDef> {
    ROOTS
        .iter()
        .find(|(v, k, _)| *v == api_version && *k == kind)
        .map(|(_, _, index)| definition_at(*index))
}

/// Every served `(apiVersion, kind, definition name)` triple.
pub fn roots() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    ROOTS
        .iter()
        .map(|(v, k, index)| (*v, *k, definition_at(*index).name))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(def: &str, name: &str) -> &'static PatchField {
        definition(def)
            .unwrap_or_else(|| panic!("no definition {def}"))
            .field(name)
            .unwrap_or_else(|| panic!("no field {def}.{name}"))
    }

    /// Follows `Obj`/`List(Def)`/`Map(Def)` from a field to the definition it holds.
    fn target(f: &PatchField) -> &'static PatchDef {
        match f.shape {
            Shape::Obj(i) | Shape::List(Elem::Def(i)) | Shape::Map(Elem::Def(i)) => {
                definition_at(i)
            }
            other => panic!("{} has no object elements: {other:?}", f.name),
        }
    }

    #[test]
    fn fields_are_sorted_for_binary_search() {
        for def in definitions() {
            for pair in def.fields.windows(2) {
                assert!(pair[0].name < pair[1].name, "{} unsorted", def.name);
            }
        }
    }

    #[test]
    fn walks_pod_spec_containers_and_ports() {
        let pod = definition("io.k8s.api.core.v1.Pod").unwrap();
        let spec = target(pod.field("spec").unwrap());
        assert_eq!(spec.name, "io.k8s.api.core.v1.PodSpec");
        let containers = spec.field("containers").unwrap();
        assert_eq!(containers.strategy, Strategy::Merge);
        assert_eq!(containers.merge_key, Some("name"));
        let container = target(containers);
        assert_eq!(container.name, "io.k8s.api.core.v1.Container");
        let ports = container.field("ports").unwrap();
        assert_eq!(ports.strategy, Strategy::Merge);
        assert_eq!(ports.merge_key, Some("containerPort"));
        assert_eq!(target(ports).name, "io.k8s.api.core.v1.ContainerPort");
    }

    #[test]
    fn known_patch_metadata() {
        let c = "io.k8s.api.core.v1.Container";
        assert_eq!(field(c, "env").merge_key, Some("name"));
        assert_eq!(field(c, "volumeMounts").merge_key, Some("mountPath"));
        // args/command are atomic lists: recorded, but without a strategy.
        assert_eq!(field(c, "args").strategy, Strategy::Unset);
        assert_eq!(field(c, "args").shape, Shape::List(Elem::Scalar));
        let spec = "io.k8s.api.core.v1.PodSpec";
        assert_eq!(field(spec, "volumes").strategy, Strategy::MergeRetainKeys);
        assert_eq!(field(spec, "imagePullSecrets").merge_key, Some("name"));
        assert_eq!(field(spec, "tolerations").strategy, Strategy::Unset);
        let svc = "io.k8s.api.core.v1.ServiceSpec";
        assert_eq!(field(svc, "ports").merge_key, Some("port"));
        let meta = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
        assert_eq!(field(meta, "finalizers").strategy, Strategy::Merge);
        assert_eq!(field(meta, "finalizers").merge_key, None);
        assert_eq!(field(meta, "labels").shape, Shape::Map(Elem::Scalar));
        assert_eq!(field(meta, "ownerReferences").merge_key, Some("uid"));
        let deploy = "io.k8s.api.apps.v1.DeploymentSpec";
        assert_eq!(field(deploy, "strategy").strategy, Strategy::RetainKeys);
        let pdb = "io.k8s.api.policy.v1.PodDisruptionBudgetSpec";
        assert_eq!(field(pdb, "selector").strategy, Strategy::Replace);
        // Scalars are not recorded.
        assert!(definition(c).unwrap().field("image").is_none());
    }

    #[test]
    fn roots_resolve() {
        assert_eq!(root_for("v1", "Pod"), Some("io.k8s.api.core.v1.Pod"));
        assert_eq!(
            root_for("apps/v1", "Deployment"),
            Some("io.k8s.api.apps.v1.Deployment")
        );
        assert_eq!(root_for("v1", "Event"), Some("io.k8s.api.core.v1.Event"));
        assert_eq!(
            root_for("events.k8s.io/v1", "Event"),
            Some("io.k8s.api.events.v1.Event")
        );
        assert_eq!(
            root_for("autoscaling/v1", "Scale"),
            Some("io.k8s.api.autoscaling.v1.Scale")
        );
        assert_eq!(root_for("example.com/v1", "Widget"), None);
        assert_eq!(
            root_for("discovery.k8s.io/v1", "EndpointSlice"),
            Some("io.k8s.api.discovery.v1.EndpointSlice")
        );
        assert_eq!(roots().count(), 27);
        for (_, _, name) in roots() {
            assert!(definition(name).is_some());
        }
    }
}
