//! Parses a request path into what it addresses (like kube-apiserver's
//! RequestInfo): discovery, or a resource with optional namespace, name and
//! subresource. Pure.

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/api`, `/apis`
    RootDiscovery {
        legacy: bool,
    },
    /// `/api/v1`, `/apis/<g>`, `/apis/<g>/<v>`
    GroupDiscovery {
        group: String,
        version: Option<String>,
    },
    Resource(ResourcePath),
}

#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub resource: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// What follows a `proxy` subresource (`nodes/<n>/proxy/<path>`).
    pub proxy_path: Option<String>,
}

/// `None` when the path is not an API path at all.
pub fn parse(path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segs.as_slice() {
        ["api"] => return Some(Target::RootDiscovery { legacy: true }),
        ["apis"] => return Some(Target::RootDiscovery { legacy: false }),
        ["api", v] => {
            return Some(Target::GroupDiscovery {
                group: String::new(),
                version: Some(v.to_string()),
            })
        }
        ["apis", g] => {
            return Some(Target::GroupDiscovery {
                group: g.to_string(),
                version: None,
            })
        }
        ["apis", g, v] => {
            return Some(Target::GroupDiscovery {
                group: g.to_string(),
                version: Some(v.to_string()),
            })
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    if rest.iter().any(|s| s.is_empty()) {
        return None;
    }
    let mut p = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        ..Default::default()
    };
    let rest: &[&str] = match rest {
        // /namespaces/<ns>/<resource>... (but /namespaces/<name>/status|finalize
        // addresses the namespace itself)
        ["namespaces", ns, sub] if *sub == "status" || *sub == "finalize" => {
            p.resource = "namespaces".into();
            p.name = Some(ns.to_string());
            p.subresource = Some(sub.to_string());
            return Some(Target::Resource(p));
        }
        ["namespaces", ns, tail @ ..] if !tail.is_empty() => {
            p.namespace = Some(ns.to_string());
            tail
        }
        other => other,
    };
    match rest {
        [r] => p.resource = r.to_string(),
        [r, n] => {
            p.resource = r.to_string();
            p.name = Some(n.to_string());
        }
        [r, n, "proxy", tail @ ..] if !tail.is_empty() => {
            p.resource = r.to_string();
            p.name = Some(n.to_string());
            p.subresource = Some("proxy".into());
            p.proxy_path = Some(tail.join("/"));
        }
        [r, n, s] => {
            p.resource = r.to_string();
            p.name = Some(n.to_string());
            p.subresource = Some(s.to_string());
        }
        _ => return None,
    }
    Some(Target::Resource(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Some(Target::Resource(r)) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn proxy_subresources_keep_the_rest_of_the_path() {
        let r = res("/api/v1/nodes/n1/proxy/stats/summary");
        assert_eq!(r.subresource.as_deref(), Some("proxy"));
        assert_eq!(r.proxy_path.as_deref(), Some("stats/summary"));
        assert_eq!(res("/api/v1/nodes/n1/proxy").proxy_path, None);
    }

    #[test]
    fn namespaced_and_cluster_paths() {
        let r = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(r.namespace.as_deref(), Some("default"));
        assert_eq!(r.resource, "pods");
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.subresource.as_deref(), Some("status"));
        let r = res("/api/v1/pods");
        assert_eq!((r.namespace, r.name), (None, None));
        let r = res("/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.resource.as_str(), r.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let r = res("/api/v1/namespaces/x/finalize");
        assert_eq!(
            (r.resource.as_str(), r.subresource.as_deref()),
            ("namespaces", Some("finalize"))
        );
        let r = res("/apis/events.k8s.io/v1/namespaces/a/events");
        assert_eq!(
            (r.group.as_str(), r.resource.as_str()),
            ("events.k8s.io", "events")
        );
    }

    #[test]
    fn discovery_and_garbage() {
        assert_eq!(parse("/api"), Some(Target::RootDiscovery { legacy: true }));
        assert!(matches!(
            parse("/apis/apps"),
            Some(Target::GroupDiscovery { version: None, .. })
        ));
        assert_eq!(parse("/other"), None);
        assert_eq!(parse("/api/v1/pods/a/b/c/d"), None);
        assert_eq!(parse("/api/v1//pods"), None);
    }
}
