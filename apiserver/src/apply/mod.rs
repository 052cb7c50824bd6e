//! Server-side apply and `metadata.managedFields`, without IO: field sets
//! and their `fieldsV1` form (`fieldset`), the schema view and the typed
//! walks (`typed`), merging and pruning (`merge`), ownership per write
//! (`managed`) and conflicts (`conflict`). The generic store calls
//! [`managed::update`] on every create/update/patch and [`managed::apply`]
//! for `application/apply-patch+yaml`.

pub mod conflict;
pub mod fieldset;
pub mod managed;
pub mod merge;
pub mod typed;

pub use managed::{ApplyError, Writer};
pub use typed::Ty;
