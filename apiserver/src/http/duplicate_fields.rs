//! Finds fields a JSON request body names twice in one object, for
//! `fieldValidation` (Strict rejects them, Warn reports them). JSON parsers
//! keep the last value silently, so this is a pass of its own over the
//! bytes: it allocates only per object (the keys seen so far, borrowed
//! where they need no unescaping) and for the paths it reports.
//!
//! Paths read like upstream's: `metadata.name`, `spec.containers[0].image`.
//! A body that is not valid JSON yields nothing here; the real decode
//! reports it.

use std::borrow::Cow;
use std::fmt;

use crate::field_path::{render, Step};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Paths of the duplicated fields, in the order they appear.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let mut path = Vec::new();
    let _ = Scan {
        path: &mut path,
        found: &mut found,
    }
    .deserialize(&mut de);
    found
}

struct Scan<'p, 'a> {
    path: &'p mut Vec<Step<'a>>,
    found: &'p mut Vec<String>,
}

impl<'de, 'p> DeserializeSeed<'de> for Scan<'p, 'de> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, 'p> Visitor<'de> for Scan<'p, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut i = 0;
        loop {
            self.path.push(Step::Index(i));
            let more = seq.next_element_seed(Scan {
                path: &mut *self.path,
                found: &mut *self.found,
            })?;
            self.path.pop();
            if more.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let key = key.0;
            if seen.contains(&key) {
                self.found.push(render(self.path, &key));
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            self.path.push(Step::Key(key.clone()));
            map.next_value_seed(Scan {
                path: &mut *self.path,
                found: &mut *self.found,
            })?;
            self.path.pop();
            seen.push(key);
        }
        Ok(())
    }
}

/// A key, borrowed from the body unless it had escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_each_repeated_field_with_its_path() {
        let body = br#"{"kind":"Pod","metadata":{"name":"a","name":"b","labels":{"x":"1","x":"2"}},
            "spec":{"containers":[{"name":"c","image":"i"},{"name":"d","image":"i","image":"j"}]},
            "kind":"Pod"}"#;
        assert_eq!(
            duplicate_fields(body),
            [
                "metadata.name",
                "metadata.labels.x",
                "spec.containers[1].image",
                "kind"
            ]
        );
    }

    #[test]
    fn nothing_for_clean_escaped_or_invalid_bodies() {
        assert!(duplicate_fields(br#"{"a":{"b":1},"c":[{"b":1},{"b":2}]}"#).is_empty());
        // The same name in different objects is no duplicate.
        assert!(duplicate_fields(br#"{"a":{"x":1},"b":{"x":1}}"#).is_empty());
        // Escaped keys compare by their text.
        assert_eq!(duplicate_fields(br#"{"a\u0062":1,"ab":2}"#), ["ab"]);
        assert!(duplicate_fields(b"{not json").is_empty());
        assert!(duplicate_fields(b"").is_empty());
    }
}
