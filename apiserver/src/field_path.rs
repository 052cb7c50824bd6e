//! A field path as Kubernetes prints it in messages
//! (`spec.containers[0].image`): walkers of a JSON document push and pop
//! steps, and format the path only when they report something, so the
//! common case allocates nothing. Pure.

use std::borrow::Cow;

/// One step of a path.
pub enum Step<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

/// `a.b[0].c`, with `last` (when not empty) as one more key.
pub fn render(path: &[Step<'_>], last: &str) -> String {
    let mut s = String::new();
    let key = |s: &mut String, k: &str| {
        if !s.is_empty() {
            s.push('.');
        }
        s.push_str(k);
    };
    for step in path {
        match step {
            Step::Key(k) => key(&mut s, k),
            Step::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if !last.is_empty() {
        key(&mut s, last);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_dotted_and_indexes_bracketed() {
        let path = [
            Step::Key("spec".into()),
            Step::Key("containers".into()),
            Step::Index(0),
        ];
        assert_eq!(render(&path, "image"), "spec.containers[0].image");
        assert_eq!(render(&path, ""), "spec.containers[0]");
        assert_eq!(render(&[], "name"), "name");
    }
}
