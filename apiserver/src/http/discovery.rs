//! Discovery endpoints: legacy documents and aggregated discovery
//! (`apidiscovery.k8s.io/v2`), chosen by the Accept header.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Response};

use super::negotiate::{bytes_response, json_response};
use super::ApiServer;
use crate::error::{ApiError, ApiResult, Reason};

const AGGREGATED: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

fn wants_aggregated(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    accept.split(',').next().is_some_and(|first| {
        let params: Vec<&str> = first.split(';').map(str::trim).collect();
        params.contains(&"g=apidiscovery.k8s.io")
            && params.contains(&"v=v2")
            && params.contains(&"as=APIGroupDiscoveryList")
    })
}

fn only_get(method: &Method) -> ApiResult<()> {
    if method == Method::GET || method == Method::HEAD {
        Ok(())
    } else {
        Err(ApiError::method_not_allowed(method.as_str(), "discovery"))
    }
}

pub fn root(
    server: &Arc<ApiServer>,
    legacy: bool,
    headers: &HeaderMap,
    method: &Method,
) -> ApiResult<Response<Body>> {
    only_get(method)?;
    let resources = super::served_descriptors(server);
    if wants_aggregated(headers) {
        let doc = openapi::aggregated_discovery(&resources, legacy);
        return Ok(bytes_response(
            200,
            AGGREGATED,
            serde_json::to_vec(&doc).expect("json"),
        ));
    }
    let doc = if legacy {
        openapi::api_versions(&server.server_address)
    } else {
        openapi::api_group_list(&resources)
    };
    Ok(json_response(200, &doc))
}

pub fn group(
    server: &Arc<ApiServer>,
    group: &str,
    version: Option<&str>,
    method: &Method,
) -> ApiResult<Response<Body>> {
    only_get(method)?;
    let resources = super::served_descriptors(server);
    let not_found = || {
        ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )
    };
    match version {
        Some(v) => {
            let gv = openapi::GroupVersion {
                group: resources
                    .iter()
                    .find(|r| r.group == group)
                    .map(|r| r.group)
                    .ok_or_else(not_found)?,
                version: resources
                    .iter()
                    .find(|r| r.group == group && r.version == v)
                    .map(|r| r.version)
                    .ok_or_else(not_found)?,
            };
            let doc = openapi::api_resource_list(&resources, &gv).ok_or_else(not_found)?;
            Ok(json_response(200, &doc))
        }
        None => {
            let list = openapi::api_group_list(&resources);
            let g = list["groups"]
                .as_array()
                .and_then(|gs| gs.iter().find(|g| g["name"] == group))
                .cloned()
                .ok_or_else(not_found)?;
            let mut g = g;
            g["kind"] = "APIGroup".into();
            g["apiVersion"] = "v1".into();
            Ok(json_response(200, &g))
        }
    }
}
