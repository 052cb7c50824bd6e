//! The two endpoints of node joining, served without credentials: the CA
//! certificate, and the exchange of a join token for node credentials
//! (see `join/mod.rs`). A wrong token is a 401 and issues nothing.

use axum::body::{Body, Bytes};
use axum::http::{Method, Response};

use crate::error::{ApiError, Reason};
use crate::join::{self, JoinError, JoinRequest};

use super::ApiServer;

pub fn is_join_path(path: &str) -> bool {
    path == join::CA_PATH || path == join::JOIN_PATH
}

pub fn handle(
    server: &ApiServer,
    method: &Method,
    path: &str,
    body: &Bytes,
) -> Result<Response<Body>, ApiError> {
    let Some(node_join) = server.node_join.as_ref() else {
        return Err(ApiError::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        ));
    };
    match (path, method) {
        (join::CA_PATH, &Method::GET) => Ok(Response::builder()
            .header("content-type", "application/x-pem-file")
            .body(Body::from(node_join.ca_cert.clone()))
            .expect("valid response")),
        (join::JOIN_PATH, &Method::POST) => {
            let req: JoinRequest = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid join request: {e}")))?;
            let creds =
                join::issue(&node_join.pki_dir, &node_join.token, &req).map_err(|e| match e {
                    JoinError::BadToken => ApiError::new(Reason::Unauthorized, e.to_string()),
                    JoinError::Invalid(m) => ApiError::new(Reason::Invalid, m),
                    JoinError::Tls(t) => ApiError::internal(t.to_string()),
                })?;
            tracing::info!(node = %req.node_name, "node joined");
            Ok(Response::builder()
                .header("content-type", "application/json")
                .body(Body::from(
                    serde_json::to_vec(&creds).expect("serializable"),
                ))
                .expect("valid response"))
        }
        _ => Err(ApiError::method_not_allowed(method.as_str(), path)),
    }
}
