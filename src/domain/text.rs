//! Free text and client JSON, checked where they enter: every text input has a
//! stated maximum, nothing PostgreSQL refuses (a NUL byte) reaches SQL, and
//! stored JSON has a bounded depth and size so that reading it back can never
//! fail. Errors name the field and echo at most [`ECHO_CHARS`] characters.

use serde_json::Value;

/// How much of a client's value an error message repeats.
pub const ECHO_CHARS: usize = 64;
/// Nesting of a JSON value nspool stores (`config`, `dagDeployment`, `payload`).
pub const MAX_STORED_JSON_DEPTH: usize = 32;
/// Serialized size of a JSON value nspool stores.
pub const MAX_STORED_JSON_BYTES: usize = 64 * 1024;

/// Maximum lengths (in characters) of the text inputs, by what they are.
pub mod max {
    pub const LABEL: usize = 128;
    pub const DESCRIPTION: usize = 1024;
    /// Versions, executor type names, cloud roles, DAG deployment fields.
    pub const SHORT: usize = 256;
    /// Search filters and names that are checked afterwards (namespaces, release names, ids).
    pub const FILTER: usize = 256;
    pub const TOKEN_LABEL: usize = 128;
    pub const REASON: usize = 1024;
    /// Known hosts and SSH keys in `dagDeployment`.
    pub const KEY_MATERIAL: usize = 16 * 1024;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} contains a NUL character (U+0000), which nspool cannot store")]
    Nul { field: String },
    #[error("{field} is at most {max} characters; this one has {len}")]
    TooLong {
        field: String,
        max: usize,
        len: usize,
    },
    /// A bidirectional embedding, override or isolate (U+202A–U+202E,
    /// U+2066–U+2069): it reorders what a person reads around it on the
    /// dashboard, in `kubectl events` and in a terminal, so the text shown
    /// would not be the text stored.
    #[error(
        "{field} contains a bidirectional control character (U+{code:04X}), which would make it read differently from what it is"
    )]
    BidiControl { field: String, code: u32 },
    #[error("{field} is nested deeper than {max} levels")]
    TooDeep { field: String, max: usize },
    #[error("{field} is larger than {max} bytes as JSON")]
    TooLarge { field: String, max: usize },
}

/// The start of `value`, for an error message: at most [`ECHO_CHARS`]
/// characters, control characters shown as `\u{..}`, and "…" when cut.
pub fn excerpt(value: &str) -> String {
    let mut out = String::new();
    for (i, c) in value.chars().enumerate() {
        if i == ECHO_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// A text input: no NUL, at most `max` characters.
pub fn check(field: &str, value: &str, max: usize) -> Result<(), TextError> {
    if value.contains('\0') {
        return Err(TextError::Nul {
            field: field.to_owned(),
        });
    }
    if let Some(c) = value.chars().find(|c| is_bidi_control(*c)) {
        return Err(TextError::BidiControl {
            field: field.to_owned(),
            code: u32::from(c),
        });
    }
    // chars().count() is linear; the body limit bounds it.
    let len = value.chars().count();
    if len > max {
        return Err(TextError::TooLong {
            field: field.to_owned(),
            max,
            len,
        });
    }
    Ok(())
}

/// `text` with each bidirectional control shown as `<U+202E>`: stored text
/// from before the check (or an event's copy of it, which is append-only)
/// reads as what it is wherever nspool shows it to a person (the dashboard,
/// Kubernetes Event notes).
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    bidi_marked(text, "<", ">")
}

/// `text` with each bidirectional control written `{open}U+202E{close}`
/// (a page already in HTML marks it with `&lt;` and `&gt;`).
pub fn bidi_marked<'a>(text: &'a str, open: &str, close: &str) -> std::borrow::Cow<'a, str> {
    if !text.chars().any(is_bidi_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_bidi_control(c) {
            out.push_str(&format!("{open}U+{:04X}{close}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The bidirectional embeddings, overrides and isolates (not the plain
/// left-to-right and right-to-left marks, which reorder nothing).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// An optional text input.
pub fn check_opt(field: &str, value: Option<&str>, max: usize) -> Result<(), TextError> {
    value.map_or(Ok(()), |v| check(field, v, max))
}

/// Depth of a JSON value (a scalar is 1), walked without recursion.
pub fn json_depth(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        deepest = deepest.max(depth);
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    deepest
}

/// Strings and keys of a JSON value, walked without recursion.
fn json_has_nul(value: &Value) -> bool {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::String(s) if s.contains('\0') => return true,
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => {
                if map.keys().any(|k| k.contains('\0')) {
                    return true;
                }
                stack.extend(map.values());
            }
            _ => {}
        }
    }
    false
}

/// JSON that nspool stores: bounded depth and size, no NUL (jsonb refuses it).
pub fn check_stored_json(field: &str, value: &Value) -> Result<(), TextError> {
    if json_depth(value) > MAX_STORED_JSON_DEPTH {
        return Err(TextError::TooDeep {
            field: field.to_owned(),
            max: MAX_STORED_JSON_DEPTH,
        });
    }
    if json_has_nul(value) {
        return Err(TextError::Nul {
            field: field.to_owned(),
        });
    }
    if stored_json_bytes(value) > MAX_STORED_JSON_BYTES {
        return Err(TextError::TooLarge {
            field: field.to_owned(),
            max: MAX_STORED_JSON_BYTES,
        });
    }
    Ok(())
}

/// The bytes of `value` as PostgreSQL writes the stored jsonb out
/// (`config::text`, what the database's check measures): ", " and ": "
/// between items, and a number with an exponent written out in full (jsonb
/// keeps numbers as `numeric`: `1e300` is 301 digits). The service and the
/// database so bound exactly the same thing.
pub fn stored_json_bytes(value: &Value) -> usize {
    let mut counter = ByteCounter(0);
    let mut serializer = serde_json::Serializer::with_formatter(&mut counter, PostgresJson);
    // Writing to a counter cannot fail; the depth is bounded by the caller.
    let _ = serde::Serialize::serialize(value, &mut serializer);
    counter.0
}

/// jsonb's ", " before every item but the first.
fn separator<W: ?Sized + std::io::Write>(writer: &mut W, first: bool) -> std::io::Result<()> {
    if first {
        Ok(())
    } else {
        writer.write_all(b", ")
    }
}

/// serde_json's compact form with jsonb's separators and numbers.
struct PostgresJson;

impl serde_json::ser::Formatter for PostgresJson {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(writer, first)
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        separator(writer, first)
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        let sent = serde_json::Number::from_f64(value)
            .map(|n| n.to_string())
            .unwrap_or_default();
        if sent.contains(['e', 'E']) {
            // Display writes every digit, as numeric's output does.
            write!(writer, "{value}")
        } else {
            writer.write_all(sent.as_bytes())
        }
    }
}

struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod stored_json_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bidi_controls_are_shown_as_what_they_are() {
        assert_eq!(visible("plain"), "plain");
        assert_eq!(visible("ab\u{202E}cd"), "ab<U+202E>cd");
        assert_eq!(visible("\u{2066}x\u{2069}"), "<U+2066>x<U+2069>");
    }

    #[test]
    fn stored_json_is_measured_as_postgres_writes_it_out() {
        // What `select '<json>'::jsonb::text` answers, byte for byte.
        assert_eq!(
            stored_json_bytes(&json!({"a": 1, "b": [1, 2]})),
            r#"{"a": 1, "b": [1, 2]}"#.len()
        );
        assert_eq!(stored_json_bytes(&json!(1.5)), 3);
        assert_eq!(stored_json_bytes(&json!(1e300)), 301);
        assert_eq!(stored_json_bytes(&json!("é\u{1}")), "\"é\\u0001\"".len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        let mut value = json!(1);
        for _ in 1..depth {
            value = json!([value]);
        }
        value
    }

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("abc"), "abc");
        let long = "x".repeat(10_000);
        assert_eq!(excerpt(&long).chars().count(), ECHO_CHARS + 1);
        assert_eq!(excerpt("a\0b"), "a\\u{0}b");
    }

    #[test]
    fn text_is_bounded_and_nul_free() {
        assert!(check("label", "ok", 3).is_ok());
        assert_eq!(
            check("label", "long", 3).unwrap_err().to_string(),
            "label is at most 3 characters; this one has 4"
        );
        assert!(matches!(
            check("label", "a\0", 3),
            Err(TextError::Nul { .. })
        ));
        // Characters, not bytes.
        assert!(check("label", "äöü", 3).is_ok());
    }

    #[test]
    fn stored_json_is_bounded() {
        assert_eq!(json_depth(&json!(1)), 1);
        assert_eq!(json_depth(&json!({"a": [1]})), 3);
        assert!(check_stored_json("config", &nested(MAX_STORED_JSON_DEPTH)).is_ok());
        assert!(matches!(
            check_stored_json("config", &nested(MAX_STORED_JSON_DEPTH + 1)),
            Err(TextError::TooDeep { .. })
        ));
        assert!(matches!(
            check_stored_json("config", &json!({"k": "a\u{0}"})),
            Err(TextError::Nul { .. })
        ));
        assert!(matches!(
            check_stored_json("config", &json!({"a\u{0}": 1})),
            Err(TextError::Nul { .. })
        ));
        let big = json!({"k": "x".repeat(MAX_STORED_JSON_BYTES)});
        assert!(matches!(
            check_stored_json("config", &big),
            Err(TextError::TooLarge { .. })
        ));
    }
}
