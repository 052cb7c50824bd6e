//! Watch for the generic store: turns a storage event stream for a
//! resource's prefix into API watch events, applying selectors (an object
//! that stops matching is reported as DELETED, as upstream does) and the
//! bookmark rules of `allowWatchBookmarks` and `sendInitialEvents`.

use std::collections::HashSet;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde_json::Value;

use super::options::ListOptions;
use super::store::Matcher;
use super::strategy::Strategy;
use super::Registry;
use crate::error::{ApiError, ApiResult};
use crate::storage::{EventType, Revision, WatchOptions};

/// How often an idle watch with bookmarks enabled gets one.
const BOOKMARK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug)]
pub enum WatchItem {
    Event {
        kind: &'static str,
        object: Value,
    },
    /// The object as JSON bytes (with its resourceVersion), when the caller
    /// asked for raw JSON and nothing needed decoding.
    RawEvent {
        kind: &'static str,
        json: Vec<u8>,
    },
    Bookmark {
        revision: Revision,
        initial_events_end: bool,
    },
    Error(ApiError),
}

struct State {
    matcher: Matcher,
    /// Keys last reported as matching (to turn "stopped matching" into DELETED).
    seen: HashSet<String>,
    allow_bookmarks: bool,
    /// The first Progress after the initial state marks its end.
    initial_pending: bool,
    initial_end_bookmark: bool,
    done: bool,
    /// Emit `RawEvent`s: no selector and no version conversion, so every
    /// event can be written from the stored bytes without decoding them.
    raw: bool,
}

impl Registry {
    pub async fn watch(
        &self,
        s: &Arc<dyn Strategy>,
        ns: Option<&str>,
        opts: &ListOptions,
        raw_json: bool,
    ) -> ApiResult<impl Stream<Item = WatchItem> + Send + 'static> {
        let matcher = Self::matcher(s, opts)?;
        let d = s.descriptor();
        let raw =
            raw_json && matcher.is_everything() && s.storage_resource() == (d.group, d.resource);
        let rv = opts.resource_version.filter(|r| *r > 0);
        let legacy_initial = rv.is_none();
        let send_initial = opts.send_initial_events.unwrap_or(legacy_initial);
        if opts.send_initial_events == Some(true) && !opts.allow_bookmarks {
            return Err(ApiError::new(
                crate::error::Reason::Invalid,
                "sendInitialEvents requires allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan",
            ));
        }
        let prefix = Registry::prefix(s.as_ref(), ns);
        let storage_opts = WatchOptions {
            after_revision: rv,
            send_initial,
            progress_interval: opts.allow_bookmarks.then_some(BOOKMARK_INTERVAL),
        };
        // Like kube-apiserver, once the request is accepted a too-old
        // revision is reported as an ERROR event in a 200 stream.
        let inner = match self.storage.watch(&prefix, storage_opts).await {
            Ok(inner) => inner,
            Err(e @ crate::storage::StorageError::Expired { .. }) => {
                futures::stream::once(async move { Err(e) }).boxed()
            }
            Err(e) => return Err(e.into()),
        };
        let state = State {
            matcher,
            seen: HashSet::new(),
            allow_bookmarks: opts.allow_bookmarks,
            initial_pending: send_initial,
            initial_end_bookmark: opts.send_initial_events == Some(true),
            done: false,
            raw,
        };
        Ok(futures::stream::unfold(
            (inner, state),
            |(mut inner, mut st)| async move {
                loop {
                    if st.done {
                        return None;
                    }
                    let item = match inner.next().await? {
                        Err(e) => {
                            st.done = true;
                            WatchItem::Error(ApiError::from(e))
                        }
                        Ok(ev) => match st.translate(ev) {
                            Some(item) => item,
                            None => continue,
                        },
                    };
                    return Some((item, (inner, st)));
                }
            },
        ))
    }
}

impl State {
    fn translate(&mut self, ev: crate::storage::Event) -> Option<WatchItem> {
        if ev.kind == EventType::Progress {
            let initial_end = std::mem::replace(&mut self.initial_pending, false);
            if initial_end && self.initial_end_bookmark {
                return Some(WatchItem::Bookmark {
                    revision: ev.revision,
                    initial_events_end: true,
                });
            }
            return self.allow_bookmarks.then_some(WatchItem::Bookmark {
                revision: ev.revision,
                initial_events_end: false,
            });
        }
        if self.raw {
            let kind = match ev.kind {
                EventType::Added => "ADDED",
                EventType::Modified => "MODIFIED",
                _ => "DELETED",
            };
            let mut json = Vec::with_capacity(ev.kv.value.len() + 32);
            if super::splice::append_with_resource_version(
                &mut json,
                &ev.kv.value,
                ev.kv.mod_revision,
            ) {
                return Some(WatchItem::RawEvent { kind, json });
            }
        }
        let object = match Registry::decode_as(self.matcher.strategy(), &ev.kv) {
            Ok(o) => o,
            Err(e) => return Some(WatchItem::Error(e)),
        };
        let matches = self.matcher.matches(&object);
        let was_seen = self.seen.contains(&ev.kv.key);
        let kind = match ev.kind {
            EventType::Deleted => {
                self.seen.remove(&ev.kv.key);
                if !matches && !was_seen {
                    return None;
                }
                "DELETED"
            }
            EventType::Added | EventType::Modified => {
                if matches {
                    self.seen.insert(ev.kv.key.clone());
                    if ev.kind == EventType::Added || !was_seen && !self.matcher.is_everything() {
                        "ADDED"
                    } else {
                        "MODIFIED"
                    }
                } else if was_seen {
                    self.seen.remove(&ev.kv.key);
                    "DELETED"
                } else {
                    return None;
                }
            }
            EventType::Progress => unreachable!("handled above"),
        };
        Some(WatchItem::Event { kind, object })
    }
}
