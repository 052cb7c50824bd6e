//! Field selectors: parsing the `fieldSelector` query parameter and the
//! per-kind table of the field labels kube-apiserver lets clients select on,
//! with how to read each one from a stored JSON object.
//!
//! Grammar (upstream `fields.ParseSelector`): terms separated by unescaped
//! commas, each `field=value`, `field==value` or `field!=value`. In values a
//! backslash escapes `\`, `,` and `=`; any other escape, an unescaped `=` or a
//! trailing lone backslash is an error. Field names are taken literally (the
//! first operator in a term splits it). There is no whitespace trimming: a
//! space is part of the name or value, as upstream.
//!
//! Support is per kind and follows kube-apiserver's field label conversion
//! functions exactly, including their three different error messages and
//! their quirks (see [`supported_fields`]).

use std::fmt;

use serde_json::Value;

use super::label::SelectorError;
use super::{go_quote, split_kind_id};

/// How a term compares the field with its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldOperator {
    /// `f=v` or `f==v` (upstream treats them alike).
    Equals,
    /// `f!=v`
    NotEquals,
}

/// One `field <op> value` term, with the value unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldRequirement {
    pub field: String,
    pub operator: FieldOperator,
    pub value: String,
}

impl fmt::Display for FieldRequirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            FieldOperator::Equals => "=",
            FieldOperator::NotEquals => "!=",
        };
        write!(f, "{}{op}{}", self.field, escape_value(&self.value))
    }
}

/// A parsed field selector: the AND of its terms. The default value selects
/// everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    /// In upstream's order: sorted by the raw text of each term, which decides
    /// which unsupported field is reported first.
    terms: Vec<FieldRequirement>,
}

impl FieldSelector {
    /// The selector that selects everything.
    pub fn everything() -> Self {
        FieldSelector::default()
    }

    /// Parses the string form used by `?fieldSelector=` and
    /// `kubectl --field-selector`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::with_capacity(parts.len());
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, operator, rhs)) = split_term(part) else {
                return Err(SelectorError(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            terms.push(FieldRequirement {
                field: lhs.to_string(),
                operator,
                value: unescape_value(rhs)?,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// The field names the selector uses, so the caller can reject the ones
    /// its kind does not support (see [`check_supported`](Self::check_supported)).
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.terms.iter().map(|t| t.field.as_str())
    }

    /// The terms, in upstream's order.
    pub fn terms(&self) -> &[FieldRequirement] {
        &self.terms
    }

    /// True when the selector has no terms (selects everything).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether an object is selected; `get` returns a field's value, `None`
    /// standing for the empty string (a missing field equals `""`).
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|t| {
            let have = get(&t.field).unwrap_or_default();
            match t.operator {
                FieldOperator::Equals => have == t.value,
                FieldOperator::NotEquals => have != t.value,
            }
        })
    }

    /// [`matches`](Self::matches) against a stored object of kind `kind`,
    /// reading fields through [`field_value`]. Unsupported fields read as
    /// empty; call [`check_supported`](Self::check_supported) first.
    pub fn matches_object(&self, kind: &str, obj: &Value) -> bool {
        self.matches(|f| field_value(kind, f, obj).flatten())
    }

    /// Fails with kube-apiserver's 400 message for the first field (in
    /// upstream's order) that `kind` does not support.
    pub fn check_supported(&self, kind: &str) -> Result<(), SelectorError> {
        let spec = KindSpec::of(kind);
        match self.terms.iter().find(|t| !spec.supports(&t.field)) {
            Some(t) => Err(SelectorError(spec.unsupported(&t.field))),
            None => Ok(()),
        }
    }

    /// The value `field` must equal, when an `=` term pins it (for example
    /// `metadata.name=foo`, which lets a list become a single get).
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && t.operator == FieldOperator::Equals)
            .map(|t| t.value.as_str())
    }
}

impl fmt::Display for FieldSelector {
    /// The canonical string form: terms joined by `,`, values escaped.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{t}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for FieldSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldSelector::parse(s)
    }
}

/// Splits at commas not preceded by a backslash escape; escapes stay in the
/// pieces (they are removed from values later).
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut in_slash = false;
    for (i, c) in s.char_indices() {
        if in_slash {
            in_slash = false;
        } else if c == '\\' {
            in_slash = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// Splits a term at the first operator. At each position `!=` is tried
/// before `==` before `=`, so `a==b` is not read as `a` `=` `=b`.
fn split_term(term: &str) -> Option<(&str, FieldOperator, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for (op, operator) in [
            ("!=", FieldOperator::NotEquals),
            ("==", FieldOperator::Equals),
            ("=", FieldOperator::Equals),
        ] {
            if let Some(value) = rest.strip_prefix(op) {
                return Some((&term[..i], operator, value));
            }
        }
    }
    None
}

/// Escapes a value for use in a field selector string.
pub fn escape_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        if matches!(c, '\\' | ',' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Removes the escaping from a field selector value, with upstream's errors.
pub fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut in_slash = false;
    for c in s.chars() {
        if in_slash {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            in_slash = false;
            continue;
        }
        match c {
            '\\' => in_slash = true,
            // Upstream formats the rune with %v, which prints its code point
            // as a decimal number.
            ',' | '=' => {
                return Err(SelectorError(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            c => out.push(c),
        }
    }
    if in_slash {
        return Err(SelectorError::new(
            "invalid field selector: invalid escape sequence: \\",
        ));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Per-kind support.

/// The kinds whose field label conversion differs from the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KindSpec {
    Pod,
    Node,
    ReplicationController,
    Event,
    EventsV1Event,
    Namespace,
    Secret,
    Service,
    Job,
    CertificateSigningRequest,
    /// Everything else: only `metadata.name` and `metadata.namespace`.
    Default,
}

impl KindSpec {
    fn of(kind_id: &str) -> KindSpec {
        match split_kind_id(kind_id) {
            ("", "Pod") => KindSpec::Pod,
            ("", "Node") => KindSpec::Node,
            ("", "ReplicationController") => KindSpec::ReplicationController,
            ("", "Event") => KindSpec::Event,
            ("events.k8s.io", "Event") => KindSpec::EventsV1Event,
            ("", "Namespace") => KindSpec::Namespace,
            ("", "Secret") => KindSpec::Secret,
            ("", "Service") => KindSpec::Service,
            ("" | "batch", "Job") => KindSpec::Job,
            ("" | "certificates.k8s.io", "CertificateSigningRequest") => {
                KindSpec::CertificateSigningRequest
            }
            _ => KindSpec::Default,
        }
    }

    fn fields(self) -> &'static [&'static str] {
        match self {
            KindSpec::Pod => &[
                "metadata.name",
                "metadata.namespace",
                "spec.nodeName",
                "spec.restartPolicy",
                "spec.schedulerName",
                "spec.serviceAccountName",
                "spec.hostNetwork",
                "status.phase",
                "status.podIP",
                "status.podIPs",
                "status.nominatedNodeName",
                // Old v1 clients' name for spec.nodeName.
                "spec.host",
            ],
            // Cluster-scoped kinds with their own conversion reject
            // metadata.namespace.
            KindSpec::Node => &["metadata.name", "spec.unschedulable"],
            KindSpec::ReplicationController => {
                &["metadata.name", "metadata.namespace", "status.replicas"]
            }
            KindSpec::Event => &[
                "involvedObject.kind",
                "involvedObject.namespace",
                "involvedObject.name",
                "involvedObject.uid",
                "involvedObject.apiVersion",
                "involvedObject.resourceVersion",
                "involvedObject.fieldPath",
                "reason",
                "reportingComponent",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            KindSpec::EventsV1Event => &[
                "regarding.kind",
                "regarding.namespace",
                "regarding.name",
                "regarding.uid",
                "regarding.apiVersion",
                "regarding.resourceVersion",
                "regarding.fieldPath",
                "reason",
                "reportingController",
                "source",
                "type",
                "metadata.namespace",
                "metadata.name",
            ],
            KindSpec::Namespace => &["status.phase", "metadata.name"],
            KindSpec::Secret => &["type", "metadata.namespace", "metadata.name"],
            KindSpec::Service => &[
                "metadata.namespace",
                "metadata.name",
                "spec.clusterIP",
                "spec.type",
            ],
            KindSpec::Job => &["metadata.name", "metadata.namespace", "status.successful"],
            KindSpec::CertificateSigningRequest => &["metadata.name", "spec.signerName"],
            KindSpec::Default => &["metadata.name", "metadata.namespace"],
        }
    }

    fn supports(self, field: &str) -> bool {
        self.fields().contains(&field)
    }

    fn unsupported(self, field: &str) -> String {
        match self {
            KindSpec::Job => {
                format!(
                    "field label {} not supported for batchv1.Job",
                    go_quote(field)
                )
            }
            KindSpec::Default => format!(
                "{} is not a known field selector: only \"metadata.name\", \"metadata.namespace\"",
                go_quote(field)
            ),
            _ => format!("field label not supported: {field}"),
        }
    }
}

/// The field labels `kind` (a kind id, see the module docs of
/// [`selector`](super)) accepts in field selectors.
///
/// This mirrors kube-apiserver, not the documentation: apps/v1 ReplicaSet
/// accepts only the metadata fields (its `status.replicas` selectable field
/// has no conversion registered), Node and Namespace reject
/// `metadata.namespace`, and Pod's `status.podIPs` is accepted but always
/// reads as empty.
pub fn supported_fields(kind: &str) -> &'static [&'static str] {
    KindSpec::of(kind).fields()
}

/// kube-apiserver's 400 message for a field label `kind` does not support.
/// Most kinds say `field label not supported: <f>`; kinds without their own
/// conversion use the generic `"<f>" is not a known field selector: only
/// "metadata.name", "metadata.namespace"`, and Job has its own wording.
pub fn unsupported_field_message(kind: &str, field: &str) -> String {
    KindSpec::of(kind).unsupported(field)
}

/// The value of field label `field` of `obj`, a stored object of kind `kind`.
///
/// `None` when the kind does not support the field (answer 400 with
/// [`unsupported_field_message`]); `Some(None)` when the field is supported
/// but absent, which selectors treat as the empty string. Values are rendered
/// as upstream renders them: integers in decimal (absent → `"0"`), booleans as
/// `"true"`/`"false"` (absent → `"false"`).
pub fn field_value(kind: &str, field: &str, obj: &Value) -> Option<Option<String>> {
    let spec = KindSpec::of(kind);
    if !spec.supports(field) {
        return None;
    }
    let value = match (spec, field) {
        (_, "metadata.name") => text(obj, &["metadata", "name"]),
        (_, "metadata.namespace") => text(obj, &["metadata", "namespace"]),

        (KindSpec::Pod, "spec.nodeName" | "spec.host") => text(obj, &["spec", "nodeName"]),
        (KindSpec::Pod, "spec.restartPolicy") => text(obj, &["spec", "restartPolicy"]),
        (KindSpec::Pod, "spec.schedulerName") => text(obj, &["spec", "schedulerName"]),
        (KindSpec::Pod, "spec.serviceAccountName") => text(obj, &["spec", "serviceAccountName"]),
        (KindSpec::Pod, "spec.hostNetwork") => boolean(obj, &["spec", "hostNetwork"]),
        (KindSpec::Pod, "status.phase") => text(obj, &["status", "phase"]),
        (KindSpec::Pod, "status.podIP") => pod_ip(obj),
        (KindSpec::Pod, "status.nominatedNodeName") => text(obj, &["status", "nominatedNodeName"]),
        // Accepted by the conversion but absent from upstream's selectable
        // field set, so it always reads as "".
        (KindSpec::Pod, "status.podIPs") => None,

        (KindSpec::Node, "spec.unschedulable") => boolean(obj, &["spec", "unschedulable"]),

        (KindSpec::ReplicationController, "status.replicas") => {
            integer(obj, &["status", "replicas"])
        }

        (KindSpec::Event, "reportingComponent") => text(obj, &["reportingController"]),
        (KindSpec::Event, "source") => text(obj, &["source", "component"])
            .filter(|s| !s.is_empty())
            .or_else(|| text(obj, &["reportingController"])),
        (KindSpec::Event, f) if f.starts_with("involvedObject.") => {
            text(obj, &["involvedObject", &f["involvedObject.".len()..]])
        }

        // events.k8s.io/v1 objects keep the involved object under
        // `regarding` and the source under `deprecatedSource`.
        (KindSpec::EventsV1Event, "reportingController") => text(obj, &["reportingController"]),
        (KindSpec::EventsV1Event, "source") => text(obj, &["deprecatedSource", "component"])
            .filter(|s| !s.is_empty())
            .or_else(|| text(obj, &["reportingController"])),
        (KindSpec::EventsV1Event, f) if f.starts_with("regarding.") => {
            text(obj, &["regarding", &f["regarding.".len()..]])
        }
        (KindSpec::Event | KindSpec::EventsV1Event, "reason" | "type") => text(obj, &[field]),

        (KindSpec::Namespace, "status.phase") => text(obj, &["status", "phase"]),
        (KindSpec::Secret, "type") => text(obj, &["type"]),
        (KindSpec::Service, "spec.clusterIP") => text(obj, &["spec", "clusterIP"]),
        (KindSpec::Service, "spec.type") => text(obj, &["spec", "type"]),
        // The field label says "successful"; the object field is "succeeded".
        (KindSpec::Job, "status.successful") => integer(obj, &["status", "succeeded"]),
        (KindSpec::CertificateSigningRequest, "spec.signerName") => {
            text(obj, &["spec", "signerName"])
        }
        _ => None,
    };
    Some(value)
}

fn at<'a>(obj: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(obj, |v, k| v.get(k))
}

fn text(obj: &Value, path: &[&str]) -> Option<String> {
    at(obj, path).and_then(Value::as_str).map(str::to_string)
}

fn integer(obj: &Value, path: &[&str]) -> Option<String> {
    Some(
        at(obj, path)
            .and_then(Value::as_i64)
            .unwrap_or(0)
            .to_string(),
    )
}

fn boolean(obj: &Value, path: &[&str]) -> Option<String> {
    Some(
        at(obj, path)
            .and_then(Value::as_bool)
            .unwrap_or(false)
            .to_string(),
    )
}

/// The first pod IP. Upstream reads `status.podIPs[0]`, which conversion
/// fills from `status.podIP` when only the latter is set.
fn pod_ip(obj: &Value) -> Option<String> {
    at(obj, &["status", "podIPs"])
        .and_then(Value::as_array)
        .and_then(|ips| ips.first())
        .and_then(|ip| ip.get("ip"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| text(obj, &["status", "podIP"]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(s: &str) -> FieldSelector {
        FieldSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        FieldSelector::parse(s).unwrap_err().0
    }

    #[test]
    fn parses_terms() {
        let s = parse("status.phase=Running,spec.nodeName!=n1,metadata.name==x");
        assert_eq!(
            s.to_string(),
            "metadata.name=x,spec.nodeName!=n1,status.phase=Running"
        );
        assert_eq!(
            s.fields().collect::<Vec<_>>(),
            ["metadata.name", "spec.nodeName", "status.phase"]
        );
        assert_eq!(s.terms()[1].operator, FieldOperator::NotEquals);
        assert!(parse("").is_empty());
        assert!(parse(",,").is_empty());
        assert_eq!(parse("a=b,").to_string(), "a=b");
        assert_eq!(parse("a=").terms()[0].value, "");
        assert_eq!(parse("a==").terms()[0].value, "");
        // The first operator splits the term; later ones belong to the value.
        assert_eq!(parse("a=!b").terms()[0].value, "!b");
        assert_eq!(parse("a==!b").terms()[0].value, "!b");
    }

    #[test]
    fn escapes() {
        let s = parse(r"a=x\,y\=z\\w,b=c");
        assert_eq!(s.terms()[0].value, r"x,y=z\w");
        assert_eq!(s.terms()[1].value, "c");
        assert_eq!(s.to_string(), r"a=x\,y\=z\\w,b=c");
        assert_eq!(escape_value(r"a,b=c\d"), r"a\,b\=c\\d");
        assert_eq!(
            unescape_value(&escape_value(r"a,b=c\d!")).unwrap(),
            r"a,b=c\d!"
        );
        // An escaped comma does not split terms, even in the field name.
        assert_eq!(parse(r"a\,b=c").terms()[0].field, r"a\,b");
    }

    #[test]
    fn errors_match_upstream() {
        assert_eq!(err("a"), "invalid selector: 'a'; can't understand 'a'");
        assert_eq!(
            err("x=1,b"),
            "invalid selector: 'x=1,b'; can't understand 'b'"
        );
        assert_eq!(
            err("a=b=c"),
            "invalid field selector: unescaped character in value: 61"
        );
        assert_eq!(
            err(r"a=b\!"),
            r"invalid field selector: invalid escape sequence: \!"
        );
        assert_eq!(
            err(r"a=b\n"),
            r"invalid field selector: invalid escape sequence: \n"
        );
        assert_eq!(
            err(r"a=b\"),
            r"invalid field selector: invalid escape sequence: \"
        );
        // `a!==b` is `a` `!=` `=b`, whose value has an unescaped `=`.
        assert_eq!(
            err("a!==b"),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn matching() {
        let s = parse("a=1,b!=2,c=");
        let get = |f: &str| match f {
            "a" => Some("1".to_string()),
            "b" => Some("3".to_string()),
            _ => None,
        };
        assert!(s.matches(get));
        assert!(!parse("a=2").matches(get));
        assert!(parse("missing=").matches(get));
        assert!(!parse("missing!=").matches(get));
        assert!(parse("missing!=x").matches(get));
        assert!(FieldSelector::everything().matches(|_| None));
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p1", "namespace": "ns1"},
            "spec": {"nodeName": "n1", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                     "serviceAccountName": "default", "hostNetwork": true},
            "status": {"phase": "Running", "podIP": "10.0.0.9",
                       "podIPs": [{"ip": "10.0.0.9"}, {"ip": "fd00::9"}],
                       "nominatedNodeName": "n2"}
        })
    }

    #[test]
    fn pod_fields() {
        let p = pod();
        let v = |f: &str| field_value("Pod", f, &p);
        assert_eq!(v("metadata.name"), Some(Some("p1".into())));
        assert_eq!(v("metadata.namespace"), Some(Some("ns1".into())));
        assert_eq!(v("spec.nodeName"), Some(Some("n1".into())));
        assert_eq!(v("spec.host"), Some(Some("n1".into())));
        assert_eq!(v("spec.restartPolicy"), Some(Some("Always".into())));
        assert_eq!(
            v("spec.schedulerName"),
            Some(Some("default-scheduler".into()))
        );
        assert_eq!(v("spec.serviceAccountName"), Some(Some("default".into())));
        assert_eq!(v("spec.hostNetwork"), Some(Some("true".into())));
        assert_eq!(v("status.phase"), Some(Some("Running".into())));
        assert_eq!(v("status.podIP"), Some(Some("10.0.0.9".into())));
        assert_eq!(v("status.podIPs"), Some(None));
        assert_eq!(v("status.nominatedNodeName"), Some(Some("n2".into())));
        assert_eq!(v("spec.containers"), None);

        let bare = json!({"metadata": {"name": "p2"}});
        assert_eq!(
            field_value("Pod", "spec.hostNetwork", &bare),
            Some(Some("false".into()))
        );
        assert_eq!(field_value("Pod", "spec.nodeName", &bare), Some(None));
        assert_eq!(field_value("Pod", "status.podIP", &bare), Some(None));

        let s = parse("spec.nodeName=n1,status.phase!=Pending");
        assert!(s.check_supported("Pod").is_ok());
        assert!(s.matches_object("Pod", &p));
        assert!(!parse("spec.nodeName=").matches_object("Pod", &p));
        assert!(parse("spec.nodeName=").matches_object("Pod", &bare));
    }

    #[test]
    fn per_kind_values() {
        let node = json!({"metadata": {"name": "n1"}, "spec": {"unschedulable": true}});
        assert_eq!(
            field_value("Node", "spec.unschedulable", &node),
            Some(Some("true".into()))
        );
        assert_eq!(field_value("Node", "metadata.namespace", &node), None);

        let rc = json!({"metadata": {"name": "rc"}, "status": {"replicas": 3}});
        assert_eq!(
            field_value("ReplicationController", "status.replicas", &rc),
            Some(Some("3".into()))
        );
        let rc0 = json!({"metadata": {"name": "rc"}});
        assert_eq!(
            field_value("ReplicationController", "status.replicas", &rc0),
            Some(Some("0".into()))
        );

        let ns = json!({"metadata": {"name": "ns"}, "status": {"phase": "Active"}});
        assert_eq!(
            field_value("Namespace", "status.phase", &ns),
            Some(Some("Active".into()))
        );
        assert_eq!(field_value("Namespace", "metadata.namespace", &ns), None);

        let secret = json!({"metadata": {"name": "s"}, "type": "Opaque"});
        assert_eq!(
            field_value("Secret", "type", &secret),
            Some(Some("Opaque".into()))
        );

        let svc = json!({"metadata": {"name": "s"}, "spec": {"clusterIP": "10.96.0.1", "type": "ClusterIP"}});
        assert_eq!(
            field_value("Service", "spec.clusterIP", &svc),
            Some(Some("10.96.0.1".into()))
        );
        assert_eq!(
            field_value("Service", "spec.type", &svc),
            Some(Some("ClusterIP".into()))
        );

        let job = json!({"metadata": {"name": "j"}, "status": {"succeeded": 2}});
        assert_eq!(
            field_value("batch/Job", "status.successful", &job),
            Some(Some("2".into()))
        );
        assert_eq!(
            field_value("Job", "status.successful", &job),
            Some(Some("2".into()))
        );

        let rs = json!({"metadata": {"name": "rs"}, "status": {"replicas": 2}});
        assert_eq!(field_value("apps/ReplicaSet", "status.replicas", &rs), None);
        assert_eq!(
            field_value("apps/ReplicaSet", "metadata.name", &rs),
            Some(Some("rs".into()))
        );

        let cm = json!({"metadata": {"name": "cm", "namespace": "d"}});
        assert_eq!(
            field_value("ConfigMap", "metadata.namespace", &cm),
            Some(Some("d".into()))
        );
        assert_eq!(field_value("ConfigMap", "data", &cm), None);
    }

    #[test]
    fn event_fields() {
        let ev = json!({
            "metadata": {"name": "e", "namespace": "d"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "d", "uid": "u1",
                               "apiVersion": "v1", "resourceVersion": "42", "fieldPath": "spec.containers{c}"},
            "reason": "Started", "type": "Normal", "reportingController": "kubelet",
            "source": {"component": "kubelet-src"}
        });
        let v = |f: &str| field_value("Event", f, &ev).flatten();
        assert_eq!(v("involvedObject.kind").as_deref(), Some("Pod"));
        assert_eq!(v("involvedObject.uid").as_deref(), Some("u1"));
        assert_eq!(
            v("involvedObject.fieldPath").as_deref(),
            Some("spec.containers{c}")
        );
        assert_eq!(v("involvedObject.resourceVersion").as_deref(), Some("42"));
        assert_eq!(v("reason").as_deref(), Some("Started"));
        assert_eq!(v("type").as_deref(), Some("Normal"));
        assert_eq!(v("reportingComponent").as_deref(), Some("kubelet"));
        assert_eq!(v("source").as_deref(), Some("kubelet-src"));
        let no_source = json!({"reportingController": "ctrl"});
        assert_eq!(
            field_value("Event", "source", &no_source),
            Some(Some("ctrl".into()))
        );
        assert_eq!(field_value("Event", "regarding.kind", &ev), None);

        let ev1 = json!({
            "metadata": {"name": "e"},
            "regarding": {"kind": "Node", "name": "n1"},
            "reason": "Reboot", "type": "Warning", "reportingController": "kubelet",
            "deprecatedSource": {"component": "kubelet"}
        });
        let v1 = |f: &str| field_value("events.k8s.io/Event", f, &ev1);
        assert_eq!(v1("regarding.kind"), Some(Some("Node".into())));
        assert_eq!(v1("regarding.name"), Some(Some("n1".into())));
        assert_eq!(v1("regarding.uid"), Some(None));
        assert_eq!(v1("reportingController"), Some(Some("kubelet".into())));
        assert_eq!(v1("source"), Some(Some("kubelet".into())));
        assert_eq!(v1("reason"), Some(Some("Reboot".into())));
        assert_eq!(v1("involvedObject.kind"), None);
        assert_eq!(v1("reportingComponent"), None);
    }

    #[test]
    fn unsupported_messages() {
        let check = |kind: &str, sel: &str| parse(sel).check_supported(kind).unwrap_err().0;
        assert_eq!(
            check("Pod", "spec.foo=1"),
            "field label not supported: spec.foo"
        );
        assert_eq!(
            check("Node", "metadata.namespace=x"),
            "field label not supported: metadata.namespace"
        );
        assert_eq!(
            check("ConfigMap", "data.x=1"),
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            check("apps/ReplicaSet", "status.replicas=0"),
            "\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        assert_eq!(
            check("batch/Job", "status.succeeded=1"),
            "field label \"status.succeeded\" not supported for batchv1.Job"
        );
        assert_eq!(
            check("events.k8s.io/Event", "note=x"),
            "field label not supported: note"
        );
        // The first unsupported field in sorted term order is reported.
        assert_eq!(
            check("Pod", "z.b=1,spec.nodeName=x,a.c=2"),
            "field label not supported: a.c"
        );
        assert_eq!(
            unsupported_field_message("Service", "spec.ports"),
            "field label not supported: spec.ports"
        );
        assert!(supported_fields("Secret").contains(&"type"));
        assert_eq!(
            supported_fields("example.com/Widget"),
            ["metadata.name", "metadata.namespace"]
        );
        // A core kind name in another group is not the core kind.
        assert_eq!(
            field_value("example.com/Pod", "spec.nodeName", &pod()),
            None
        );
    }

    #[test]
    fn exact_values() {
        let s = parse("metadata.name=foo,metadata.namespace!=bar");
        assert_eq!(s.exact_value("metadata.name"), Some("foo"));
        assert_eq!(s.exact_value("metadata.namespace"), None);
    }
}
