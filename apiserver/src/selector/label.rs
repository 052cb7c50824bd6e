//! Label selectors: parsing the `labelSelector` query parameter, validating
//! keys and values, matching `metadata.labels`, and building selectors from the
//! `metav1.LabelSelector` objects and plain `map[string]string` selectors that
//! workload specs carry.
//!
//! The grammar and every error message follow kube-apiserver, because the
//! messages are returned verbatim in 400 Status responses that clients (and
//! conformance tests) compare:
//!
//! ```text
//! selector    := requirement ( "," requirement )*
//! requirement := [ "!" ] KEY [ op VALUE | ("in" | "notin") "(" VALUE ( "," VALUE )* ")" ]
//! op          := "=" | "==" | "!=" | ">" | "<"
//! ```
//!
//! Whitespace (space, tab, CR, LF) separates tokens and is otherwise ignored.

use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

use super::go_quote;

/// A selector that could not be parsed or built. The message is the one
/// kube-apiserver would put in its 400 response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SelectorError(pub String);

impl SelectorError {
    pub(crate) fn new(msg: impl Into<String>) -> Self {
        SelectorError(msg.into())
    }
}

/// The operator of one requirement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `k=v`
    Equals,
    /// `k==v`
    DoubleEquals,
    /// `k!=v`
    NotEquals,
    /// `k in (a,b)`
    In,
    /// `k notin (a,b)`
    NotIn,
    /// `k`
    Exists,
    /// `!k`
    DoesNotExist,
    /// `k>5` (integer comparison; only in the string grammar)
    GreaterThan,
    /// `k<5`
    LessThan,
}

impl Operator {
    /// The name upstream uses in `NotSupported` errors and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => "in",
            Operator::NotIn => "notin",
            Operator::Exists => "exists",
            Operator::DoesNotExist => "!",
            Operator::GreaterThan => "gt",
            Operator::LessThan => "lt",
        }
    }
}

/// One `key <op> values` clause; a selector is the AND of its requirements.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    op: Operator,
    /// Sorted and de-duplicated, as upstream keeps them in a string set.
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement with kube-apiserver's validation (NewRequirement
    /// without a field path, as `LabelSelectorAsSelector` calls it).
    pub fn new(key: &str, op: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let mut errs = Vec::new();
        let key_errs = qualified_name_errors(key);
        if !key_errs.is_empty() {
            errs.push(invalid("key", &go_quote(key), &key_errs.join("; ")));
        }
        match op {
            Operator::In | Operator::NotIn if values.is_empty() => errs.push(invalid(
                "values",
                &go_string_slice(&values),
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errs.push(invalid(
                    "values",
                    &go_string_slice(&values),
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => errs.push(invalid(
                "values",
                &go_string_slice(&values),
                "values set must be empty for exists and does not exist",
            )),
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(invalid(
                        "values",
                        &go_string_slice(&values),
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(invalid(
                            &format!("values[{i}]"),
                            &go_quote(v),
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, v) in values.iter().enumerate() {
            let value_errs = label_value_errors(v);
            if !value_errs.is_empty() {
                errs.push(invalid(
                    &format!("values[{i}][{key}]"),
                    &go_quote(v),
                    &value_errs.join("; "),
                ));
            }
        }
        if !errs.is_empty() {
            return Err(SelectorError(aggregate(errs)));
        }
        let mut values = values;
        values.sort();
        values.dedup();
        Ok(Requirement {
            key: key.to_string(),
            op,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.op
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement. A missing label fails `=`,
    /// `in`, `>` and `<`, and satisfies `!=` and `notin`, as upstream.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        let got = labels.get(&self.key).and_then(Value::as_str);
        match self.op {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                got.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => got.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = got.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.op == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }

    fn has_value(&self, v: &str) -> bool {
        self.values.binary_search_by(|x| x.as_str().cmp(v)).is_ok()
    }
}

impl fmt::Display for Requirement {
    /// Upstream's canonical form: `k=v`, `k in (a,b)`, `!k`, ...
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.op == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.op {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.op, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        f.write_str(&self.values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A parsed label selector: the AND of its requirements. The default value
/// selects everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    /// Upstream's `labels.Nothing()`: what a *nil* `metav1.LabelSelector`
    /// becomes. It matches no object, unlike an empty selector.
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object (an empty `labelSelector`).
    pub fn everything() -> Self {
        LabelSelector::default()
    }

    /// The selector that matches no object.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// Parses the string form used by `?labelSelector=` and `kubectl -l`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        // The upstream lexer treats a NUL byte as the end of input.
        let s = s.split('\0').next().unwrap_or("");
        let mut parser = Parser {
            items: lex(s),
            pos: 0,
        };
        let mut requirements = parser.parse()?;
        // Sorted by key so that String() is deterministic, as upstream.
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Builds the selector of a `metav1.LabelSelector` JSON object
    /// (`matchLabels` and `matchExpressions` with `In`, `NotIn`, `Exists`,
    /// `DoesNotExist`), as upstream's `LabelSelectorAsSelector`: `null` (or a
    /// missing selector) selects nothing, `{}` selects everything.
    pub fn from_label_selector_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(LabelSelector::nothing()),
            Value::Object(obj) => obj,
            other => {
                return Err(SelectorError(format!(
                    "label selector must be an object, got {other}"
                )))
            }
        };
        let mut requirements = Vec::new();
        if let Some(labels) = obj.get("matchLabels").filter(|v| !v.is_null()) {
            let labels = labels
                .as_object()
                .ok_or_else(|| SelectorError::new("matchLabels must be an object"))?;
            for (k, v) in labels {
                let v = v.as_str().ok_or_else(|| {
                    SelectorError(format!("matchLabels[{}] must be a string", go_quote(k)))
                })?;
                requirements.push(Requirement::new(k, Operator::Equals, vec![v.to_string()])?);
            }
        }
        if let Some(exprs) = obj.get("matchExpressions").filter(|v| !v.is_null()) {
            let exprs = exprs
                .as_array()
                .ok_or_else(|| SelectorError::new("matchExpressions must be an array"))?;
            for expr in exprs {
                let key = expr.get("key").and_then(Value::as_str).unwrap_or("");
                let op_name = expr.get("operator").and_then(Value::as_str).unwrap_or("");
                let op = match op_name {
                    "In" => Operator::In,
                    "NotIn" => Operator::NotIn,
                    "Exists" => Operator::Exists,
                    "DoesNotExist" => Operator::DoesNotExist,
                    other => {
                        return Err(SelectorError(format!(
                            "{} is not a valid label selector operator",
                            go_quote(other)
                        )))
                    }
                };
                let values = match expr.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(items)) => items
                        .iter()
                        .map(|v| {
                            v.as_str().map(str::to_string).ok_or_else(|| {
                                SelectorError::new("matchExpressions values must be strings")
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?,
                    Some(_) => {
                        return Err(SelectorError::new(
                            "matchExpressions values must be an array",
                        ))
                    }
                };
                requirements.push(Requirement::new(key, op, values)?);
            }
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector {
            requirements,
            nothing: false,
        })
    }

    /// Builds the equality selector of a plain label map, as the `spec.selector`
    /// of a ReplicationController or Service. Like upstream's
    /// `AsSelectorPreValidated` it trusts the map (it was validated on write):
    /// an empty map selects everything, and non-string values are compared as
    /// their JSON text. Whether an absent map means "nothing" is the caller's
    /// decision (Services without a selector get no endpoints, for example).
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let mut requirements: Vec<Requirement> = map
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                op: Operator::Equals,
                values: vec![v.as_str().map_or_else(|| v.to_string(), str::to_string)],
            })
            .collect();
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// [`from_map`](Self::from_map) for a JSON value: `null` selects everything
    /// (an empty set), anything but an object is an error.
    pub fn from_map_json(v: &Value) -> Result<Self, SelectorError> {
        match v {
            Value::Null => Ok(LabelSelector::everything()),
            Value::Object(map) => Ok(LabelSelector::from_map(map)),
            other => Err(SelectorError(format!(
                "selector must be an object, got {other}"
            ))),
        }
    }

    /// Whether an object with `labels` is selected.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether `obj` (a full object with `metadata.labels`) is selected.
    pub fn matches_object(&self, obj: &Value) -> bool {
        static NO_LABELS: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        let labels = obj
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(Value::as_object)
            .unwrap_or_else(|| NO_LABELS.get_or_init(Map::new));
        self.matches(labels)
    }

    /// True for the selector that selects everything (no requirements). The
    /// "nothing" selector is not empty, as upstream.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that selects nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// The requirements, sorted by key.
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// The value `key` must equal for this selector to match, when a `=`/`==`
    /// or single-valued `in` requirement pins it (useful to narrow a scan).
    pub fn required_value(&self, key: &str) -> Option<&str> {
        self.requirements.iter().find_map(|r| match r.op {
            Operator::Equals | Operator::DoubleEquals | Operator::In
                if r.key == key && r.values.len() == 1 =>
            {
                Some(r.values[0].as_str())
            }
            _ => None,
        })
    }
}

impl fmt::Display for LabelSelector {
    /// The canonical string form (requirements joined by `,`); both
    /// "everything" and "nothing" print as the empty string, as upstream.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

impl FromStr for LabelSelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LabelSelector::parse(s)
    }
}

/// Formats a label map as upstream's `labels.FormatLabels`: sorted `k=v`
/// pairs joined by `,`, or `<none>` when empty.
pub fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.as_str().map_or_else(|| v.to_string(), str::to_string)
            )
        })
        .collect();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    // serde_json maps are already key-ordered unless `preserve_order` is on;
    // sort anyway so the output never depends on that feature.
    pairs.sort();
    pairs.join(",")
}

// ---------------------------------------------------------------------------
// Lexer and parser.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    End,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

/// Where a token is read: `in`/`notin` are operators only right after a key;
/// everywhere else (keys and values) they are plain identifiers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

/// Splits the input into tokens, ending with `End`. Every special character
/// is a token on its own, so lexing cannot fail; `==` and `!=` are the only
/// two-character operators (upstream scans greedily for the longest one).
fn lex(s: &str) -> Vec<(Tok, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if is_whitespace(c) {
            i += 1;
            continue;
        }
        if is_special(c) {
            let next = chars.get(i + 1).copied();
            let (tok, text) = match (c, next) {
                ('=', Some('=')) => (Tok::DoubleEquals, "=="),
                ('!', Some('=')) => (Tok::NotEquals, "!="),
                ('=', _) => (Tok::Equals, "="),
                ('!', _) => (Tok::DoesNotExist, "!"),
                ('(', _) => (Tok::OpenPar, "("),
                (')', _) => (Tok::ClosedPar, ")"),
                (',', _) => (Tok::Comma, ","),
                ('>', _) => (Tok::GreaterThan, ">"),
                _ => (Tok::LessThan, "<"),
            };
            i += text.len();
            out.push((tok, text.to_string()));
            continue;
        }
        let start = i;
        while i < chars.len() && !is_whitespace(chars[i]) && !is_special(chars[i]) {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let tok = match word.as_str() {
            "in" => Tok::In,
            "notin" => Tok::NotIn,
            _ => Tok::Identifier,
        };
        out.push((tok, word));
    }
    out.push((Tok::End, String::new()));
    out
}

struct Parser {
    items: Vec<(Tok, String)>,
    pos: usize,
}

/// The operators listed when a binary operator is missing, in upstream's order.
const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn token(&self, idx: usize, ctx: Ctx) -> (Tok, String) {
        // `End` repeats forever so that lookahead past the end is harmless.
        let (tok, lit) = self
            .items
            .get(idx)
            .cloned()
            .unwrap_or((Tok::End, String::new()));
        let tok = match tok {
            Tok::In | Tok::NotIn if ctx == Ctx::Values => Tok::Identifier,
            t => t,
        };
        (tok, lit)
    }

    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        self.token(self.pos, ctx)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let t = self.token(self.pos, ctx);
        self.pos += 1;
        t
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| {
                        SelectorError(format!("unable to parse requirement: {}", e.0))
                    })?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::End => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(SelectorError(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Tok::End => return Ok(reqs),
                _ => {
                    return Err(SelectorError(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(op) = inferred {
            return Requirement::new(&key, op, Vec::new());
        }
        let op = self.parse_operator()?;
        let mut values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        // Upstream collects values in a string set and validates its sorted
        // list, so error indexes refer to sorted positions.
        values.sort();
        values.dedup();
        Requirement::new(&key, op, values)
    }

    /// Reads `[!]key`; returns the operator when it is implied (`Exists` when
    /// the key stands alone, `DoesNotExist` after `!`).
    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), SelectorError> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(SelectorError(format!(
                "found '{lit}', expected: identifier"
            )));
        }
        let errs = qualified_name_errors(&lit);
        if !errs.is_empty() {
            // The parser validates the key against a nil field path, which Go
            // prints as "<nil>".
            return Err(SelectorError(invalid(
                "<nil>",
                &go_quote(&lit),
                &errs.join("; "),
            )));
        }
        let (next, _) = self.lookahead(Ctx::Values);
        if (next == Tok::End || next == Tok::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => {
                return Err(SelectorError(format!(
                    "found '{lit}', expected: {BINARY_OPERATORS}"
                )))
            }
        })
    }

    /// Reads `( v1, v2, ... )`. Empty items are the empty value, so `()` and
    /// `(a,)` both contain `""`.
    fn parse_values(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(SelectorError(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let values = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Tok::ClosedPar {
                    // Upstream reports the token that opened the list here.
                    return Err(SelectorError(format!("found '{lit}', expected: ')'")));
                }
                Ok(values)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(vec![String::new()])
            }
            _ => Err(SelectorError(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, SelectorError> {
        let mut values: Vec<String> = Vec::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    values.push(lit);
                    let (tok2, lit2) = self.lookahead(Ctx::Values);
                    match tok2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(values),
                        _ => {
                            return Err(SelectorError(format!(
                                "found '{lit2}', expected: ',' or ')'"
                            )))
                        }
                    }
                }
                Tok::Comma => {
                    if values.is_empty() {
                        values.push(String::new()); // "(,"
                    }
                    let (tok2, _) = self.lookahead(Ctx::Values);
                    if tok2 == Tok::ClosedPar {
                        values.push(String::new()); // ",)"
                        return Ok(values);
                    }
                    if tok2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        values.push(String::new()); // ",,"
                    }
                }
                _ => {
                    return Err(SelectorError(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )))
                }
            }
        }
    }

    /// Reads the single value after `=`, `==`, `!=`, `>` or `<`; nothing
    /// before `,` or the end means the empty value.
    fn parse_exact_value(&mut self) -> Result<Vec<String>, SelectorError> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if tok == Tok::End || tok == Tok::Comma {
            return Ok(vec![String::new()]);
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            return Ok(vec![lit]);
        }
        Err(SelectorError(format!(
            "found '{lit}', expected: identifier"
        )))
    }
}

// ---------------------------------------------------------------------------
// Validation, with the wording of k8s.io/apimachinery/pkg/util/validation.

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', \
                                  and must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
                               characters, '-', '_' or '.', and must start and end with an \
                               alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
                                     alphanumeric characters, '-' or '.', and must start and end \
                                     with an alphanumeric character";

/// Upstream's RegexError text. The double space before each "or" is theirs
/// (each example ends in ", " and the joiner adds " or "); clients see it.
fn regex_error(msg: &str, fmt: &str, examples: &[&str]) -> String {
    let mut s = format!("{msg} (e.g. ");
    for (i, ex) in examples.iter().enumerate() {
        if i > 0 {
            s.push_str(" or ");
        }
        s.push_str(&format!("'{ex}', "));
    }
    s.push_str(&format!("regex used for validation is '{fmt}')"));
    s
}

fn max_len_error(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn is_qualified_name_part(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            f.is_ascii_alphanumeric()
                && l.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
            alnum(f) && alnum(l) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

fn dns1123_subdomain_errors(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len_error(253));
    }
    if !s.split('.').all(is_dns1123_label) {
        errs.push(regex_error(
            DNS1123_SUBDOMAIN_MSG,
            DNS1123_SUBDOMAIN_FMT,
            &["example.com"],
        ));
    }
    errs
}

/// Problems with a label key (upstream `IsQualifiedName`), empty when valid.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".to_string());
            } else {
                errs.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            errs.push(format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' \
                 (e.g. 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_MSG,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            ));
            return errs;
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".to_string());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len_error(63)));
    }
    if !is_qualified_name_part(name) {
        errs.push(format!(
            "name part {}",
            regex_error(
                QUALIFIED_NAME_MSG,
                QUALIFIED_NAME_FMT,
                &["MyName", "my.name", "123-abc"]
            )
        ));
    }
    errs
}

/// Problems with a label value (upstream `IsValidLabelValue`), empty when valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if value.len() > 63 {
        errs.push(max_len_error(63));
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errs.push(regex_error(
            LABEL_VALUE_MSG,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errs
}

/// A `field.Invalid` error as Go prints it: `<path>: Invalid value: <v>: <detail>`.
fn invalid(path: &str, quoted_value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {quoted_value}: {detail}")
}

/// Go's `%#v` of a `[]string`, which is how slice values appear in messages;
/// an empty slice from upstream's code paths is always nil.
fn go_string_slice(values: &[String]) -> String {
    if values.is_empty() {
        return "[]string(nil)".to_string();
    }
    let items: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
    format!("[]string{{{}}}", items.join(", "))
}

/// Upstream's error aggregate: one message as is, several de-duplicated and
/// bracketed.
fn aggregate(errs: Vec<String>) -> String {
    let mut seen: Vec<String> = Vec::new();
    for e in errs {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    if seen.len() == 1 {
        return seen.remove(0);
    }
    format!("[{}]", seen.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn sel(s: &str) -> LabelSelector {
        LabelSelector::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn err(s: &str) -> String {
        match LabelSelector::parse(s) {
            Ok(sel) => panic!("{s:?} parsed as {sel}"),
            Err(e) => e.0,
        }
    }

    #[test]
    fn parses_every_operator() {
        let cases = [
            ("a=b", "a=b"),
            ("a==b", "a==b"),
            ("a!=b", "a!=b"),
            ("a in (x,y)", "a in (x,y)"),
            ("a notin (y,x)", "a notin (x,y)"),
            ("a", "a"),
            ("!a", "!a"),
            ("a>5", "a>5"),
            ("a<5", "a<5"),
            ("a=", "a="),
            ("a in ()", "a in ()"),
            ("a in (,b)", "a in (,b)"),
            ("a in (b,,c)", "a in (,b,c)"),
            ("a in (b,)", "a in (,b)"),
            ("example.com/app=web", "example.com/app=web"),
        ];
        for (input, canonical) in cases {
            assert_eq!(sel(input).to_string(), canonical, "{input}");
        }
    }

    #[test]
    fn whitespace_and_order() {
        let s = sel("  z = 1 ,\ta in ( x , y ) ,\n!b  ");
        assert_eq!(s.to_string(), "a in (x,y),!b,z=1");
        assert_eq!(s.requirements().len(), 3);
        assert!(sel("").is_empty());
        assert!(sel("   ").is_empty());
        assert!(!sel("a").is_empty());
    }

    #[test]
    fn keywords_are_values_in_value_position() {
        assert_eq!(sel("in=notin").to_string(), "in=notin");
        assert_eq!(sel("a in (in,notin)").to_string(), "a in (in,notin)");
        assert_eq!(sel("in").to_string(), "in");
    }

    #[test]
    fn grammar_errors_match_upstream() {
        assert_eq!(err("a=b=c"), "found '=', expected: ',' or 'end of string'");
        assert_eq!(err("a=b,"), "found '', expected: identifier after ','");
        assert_eq!(err("a,,b"), "found ',', expected: identifier after ','");
        assert_eq!(
            err(",a"),
            "found ',', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("=a"),
            "found '=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(
            err("a b"),
            "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("a IN (b)"),
            "unable to parse requirement: found 'IN', expected: in, notin, =, ==, !=, gt, lt"
        );
        assert_eq!(
            err("a in b"),
            "unable to parse requirement: found 'b' expected: '('"
        );
        assert_eq!(
            err("a in (b"),
            "unable to parse requirement: found '', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (b c)"),
            "unable to parse requirement: found 'c', expected: ',' or ')'"
        );
        assert_eq!(
            err("a in (=)"),
            "unable to parse requirement: found '=', expected: ',', ')' or identifier"
        );
        assert_eq!(
            err("a in (b,=)"),
            "unable to parse requirement: found '=', expected: ',', or identifier"
        );
        assert_eq!(
            err("a=(b)"),
            "unable to parse requirement: found '(', expected: identifier"
        );
        assert_eq!(
            err("!"),
            "unable to parse requirement: found '', expected: identifier"
        );
        assert_eq!(
            err("!=a"),
            "found '!=', expected: !, identifier, or 'end of string'"
        );
        assert_eq!(err("!a=b"), "found '=', expected: ',' or 'end of string'");
    }

    #[test]
    fn key_validation_errors_match_upstream() {
        let name_re = "name part must consist of alphanumeric characters, '-', '_' or '.', and must \
                       start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  \
                       or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        assert_eq!(
            err("a:=b"),
            format!("unable to parse requirement: <nil>: Invalid value: \"a:\": {name_re}")
        );
        assert_eq!(
            err("-a"),
            format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {name_re}")
        );
        let long = "k".repeat(64);
        assert_eq!(
            err(&long),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"{long}\": name part must be \
                 no more than 63 characters"
            )
        );
        assert_eq!(
            err("/a"),
            "unable to parse requirement: <nil>: Invalid value: \"/a\": prefix part must be non-empty"
        );
        assert!(err("Example.com/a").contains(
            "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
             characters, '-' or '.', and must start and end with an alphanumeric character (e.g. \
             'example.com', regex used for validation is \
             '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        ));
        assert_eq!(
            err("a/"),
            format!(
                "unable to parse requirement: <nil>: Invalid value: \"a/\": name part must be \
                 non-empty; {name_re}"
            )
        );
        assert!(err("a/b/c").starts_with(
            "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must \
             consist of"
        ));
        assert!(err("a/b/c").ends_with(
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ));
        // 253-character prefixes are fine, 254 are not.
        let prefix = format!("{}.com", "a".repeat(249));
        assert!(LabelSelector::parse(&format!("{prefix}/x")).is_ok());
        assert!(err(&format!("a{prefix}/x"))
            .contains("prefix part must be no more than 253 characters"));
    }

    #[test]
    fn value_validation_errors_match_upstream() {
        assert_eq!(
            err("a=-b"),
            "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must \
             be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must \
             start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or \
             '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
        );
        let long = "v".repeat(64);
        assert_eq!(
            err(&format!("a={long}")),
            format!(
                "unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no \
                 more than 63 characters"
            )
        );
        // Values are sorted before validation, so the index is the sorted one.
        assert!(err("a in (z,-b)")
            .starts_with("unable to parse requirement: values[0][a]: Invalid value: \"-b\""));
        assert_eq!(
            err("a>b"),
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' \
             operators, the value must be an integer"
        );
        assert!(LabelSelector::parse(&format!("a={}", "v".repeat(63))).is_ok());
    }

    #[test]
    fn several_errors_are_bracketed() {
        assert_eq!(
            err("a<x.y_"),
            "unable to parse requirement: [values[0]: Invalid value: \"x.y_\": for 'Gt', 'Lt' \
             operators, the value must be an integer, values[0][a]: Invalid value: \"x.y_\": a \
             valid label must be an empty string or consist of alphanumeric characters, '-', '_' \
             or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
             'my_value',  or '12345', regex used for validation is \
             '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')]"
        );
    }

    #[test]
    fn matching() {
        let l = labels(json!({"app": "web", "tier": "front", "n": "7", "empty": ""}));
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "missing!=x",
            "app in (db,web)",
            "app notin (db)",
            "missing notin (x)",
            "app",
            "!missing",
            "n>6",
            "n<8",
            "app=web,tier=front",
            "empty=",
            "empty in ()",
            "empty",
        ];
        for s in yes {
            assert!(sel(s).matches(&l), "{s} should match");
        }
        let no = [
            "app=db",
            "missing=x",
            "missing=",
            "app!=web",
            "app in (db)",
            "missing in (x)",
            "app notin (web)",
            "missing",
            "!app",
            "n>7",
            "n<7",
            "missing>1",
            "app>1",
            "app=web,tier=back",
            "empty!=",
        ];
        for s in no {
            assert!(!sel(s).matches(&l), "{s} should not match");
        }
    }

    #[test]
    fn matches_object_reads_metadata_labels() {
        let obj = json!({"metadata": {"name": "x", "labels": {"app": "web"}}});
        assert!(sel("app=web").matches_object(&obj));
        assert!(!sel("app").matches_object(&json!({"metadata": {"name": "x"}})));
        assert!(sel("!app").matches_object(&json!({"metadata": {"name": "x"}})));
    }

    #[test]
    fn from_label_selector_objects() {
        let s = LabelSelector::from_label_selector_json(&json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["front", "back"]},
                {"key": "env", "operator": "NotIn", "values": ["prod"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist", "values": []}
            ]
        }))
        .unwrap();
        assert_eq!(
            s.to_string(),
            "app=web,env notin (prod),!legacy,team,tier in (back,front)"
        );
        let l = labels(json!({"app": "web", "tier": "back", "team": "a"}));
        assert!(s.matches(&l));
        let l = labels(json!({"app": "web", "tier": "back", "team": "a", "legacy": "1"}));
        assert!(!s.matches(&l));

        let everything = LabelSelector::from_label_selector_json(&json!({})).unwrap();
        assert!(everything.is_empty() && everything.matches(&Map::new()));
        let nothing = LabelSelector::from_label_selector_json(&Value::Null).unwrap();
        assert!(nothing.is_nothing() && !nothing.is_empty() && !nothing.matches(&Map::new()));
        assert_eq!(nothing.to_string(), "");
    }

    #[test]
    fn from_label_selector_errors() {
        let e = |v: Value| LabelSelector::from_label_selector_json(&v).unwrap_err().0;
        assert_eq!(
            e(json!({"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["b"]}]})),
            "\"Equals\" is not a valid label selector operator"
        );
        assert_eq!(
            e(json!({"matchExpressions": [{"key": "a", "operator": "In"}]})),
            "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
        );
        assert_eq!(
            e(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["b", "c"]}]})),
            "values: Invalid value: []string{\"b\", \"c\"}: values set must be empty for exists and does not exist"
        );
        assert!(e(json!({"matchLabels": {"bad key": "v"}}))
            .starts_with("key: Invalid value: \"bad key\": name part must consist of"));
        assert!(e(json!({"matchLabels": {"k": "bad value"}}))
            .starts_with("values[0][k]: Invalid value: \"bad value\": a valid label must be"));
    }

    #[test]
    fn from_plain_maps() {
        let m = labels(json!({"b": "2", "a": "1"}));
        let s = LabelSelector::from_map(&m);
        assert_eq!(s.to_string(), "a=1,b=2");
        assert!(s.matches(&labels(json!({"a": "1", "b": "2", "c": "3"}))));
        assert!(!s.matches(&labels(json!({"a": "1"}))));
        assert!(LabelSelector::from_map(&Map::new()).is_empty());
        assert!(LabelSelector::from_map_json(&Value::Null)
            .unwrap()
            .is_empty());
        assert!(LabelSelector::from_map_json(&json!("x")).is_err());
        assert_eq!(s.required_value("a"), Some("1"));
        assert_eq!(s.required_value("z"), None);
    }

    #[test]
    fn label_formatting() {
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(format_labels(Some(&labels(json!({})))), "<none>");
        assert_eq!(
            format_labels(Some(&labels(json!({"b": "2", "a": "1"})))),
            "a=1,b=2"
        );
    }

    #[test]
    fn requirements_built_directly() {
        let r = Requirement::new(
            "app",
            Operator::In,
            vec!["b".into(), "a".into(), "b".into()],
        )
        .unwrap();
        assert_eq!(r.values(), ["a", "b"]);
        assert_eq!(r.to_string(), "app in (a,b)");
        assert_eq!(r.operator().as_str(), "in");
        assert!(Requirement::new("app", Operator::Equals, vec![]).is_err());
        assert_eq!(
            Requirement::new("a", Operator::GreaterThan, vec!["1".into(), "2".into()])
                .unwrap_err()
                .0,
            "values: Invalid value: []string{\"1\", \"2\"}: for 'Gt', 'Lt' operators, \
             exactly one value is required"
        );
        assert_eq!(err("a in (b),"), "found '', expected: identifier after ','");
        assert_eq!("a=b".parse::<LabelSelector>().unwrap().to_string(), "a=b");
    }

    #[test]
    fn nul_ends_the_input() {
        assert_eq!(sel("a=b\0,,,").to_string(), "a=b");
    }
}
