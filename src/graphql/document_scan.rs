//! One linear pass over a GraphQL document before any parser sees it: size,
//! token count and the nesting of `{`, `[` and `(` outside strings and
//! comments. The parser and validator recurse; this pass does not, so a
//! document that would overflow a stack is refused in microseconds.

use super::limits::{MAX_DOCUMENT_BYTES, MAX_NESTING, MAX_TOKENS};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("the document is {len} bytes; the limit is {MAX_DOCUMENT_BYTES}")]
    TooLarge { len: usize },
    #[error("the document has more than {MAX_TOKENS} tokens")]
    TooManyTokens,
    #[error(
        "the document nests `{{`, `[` or `(` deeper than {MAX_NESTING} levels (line {line}, column {column})"
    )]
    TooDeep { line: usize, column: usize },
}

/// Checks the bounds of `document`; syntax is left to the parser.
pub fn scan(document: &str) -> Result<(), ScanError> {
    let bytes = document.as_bytes();
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(ScanError::TooLarge { len: bytes.len() });
    }
    let mut tokens = 0usize;
    let mut depth = 0usize;
    let mut i = 0;
    let mut count_token = || {
        tokens += 1;
        if tokens > MAX_TOKENS {
            Err(ScanError::TooManyTokens)
        } else {
            Ok(())
        }
    };
    while i < bytes.len() {
        match bytes[i] {
            // Ignored tokens: white space, line terminators, commas, the BOM's bytes.
            b' ' | b'\t' | b'\n' | b'\r' | b',' => i += 1,
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' && bytes[i] != b'\r' {
                    i += 1;
                }
            }
            b'"' => {
                count_token()?;
                i = skip_string(bytes, i);
            }
            b'{' | b'[' | b'(' => {
                count_token()?;
                depth += 1;
                if depth > MAX_NESTING {
                    let (line, column) = position(document, i);
                    return Err(ScanError::TooDeep { line, column });
                }
                i += 1;
            }
            b'}' | b']' | b')' => {
                count_token()?;
                // Unbalanced closers are the parser's to report.
                depth = depth.saturating_sub(1);
                i += 1;
            }
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                count_token()?;
                // A name or a number (with '.', 'e', '+', '-').
                i += 1;
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'+'))
                {
                    i += 1;
                }
            }
            b'.' if bytes[i..].starts_with(b"...") => {
                count_token()?;
                i += 3;
            }
            _ => {
                // Other punctuators, and bytes the parser will refuse.
                count_token()?;
                i += 1;
            }
        }
    }
    Ok(())
}

/// The index after the string starting at `start` (a `"` or `"""`).
fn skip_string(bytes: &[u8], start: usize) -> usize {
    if bytes[start..].starts_with(b"\"\"\"") {
        let mut i = start + 3;
        while i < bytes.len() {
            if bytes[i..].starts_with(b"\\\"\"\"") {
                i += 4;
            } else if bytes[i..].starts_with(b"\"\"\"") {
                return i + 3;
            } else {
                i += 1;
            }
        }
        return bytes.len();
    }
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            // A line break ends an unterminated string: the parser reports it.
            b'\n' | b'\r' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// 1-based line and column (in characters) of byte `at`.
fn position(document: &str, at: usize) -> (usize, usize) {
    let before = &document[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |p| p + 1);
    (line, document[line_start..at].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_documents_pass() {
        for doc in [
            "{ appConfig { version } }",
            "query Q($a: [String!] = [\"{[(\"]) { x(a: $a) { y } }",
            "# a comment {{{{{{\n{ a }",
            "{ a(s: \"\"\"block {{{ \\\"\"\" still\"\"\") }",
        ] {
            assert_eq!(scan(doc), Ok(()), "{doc}");
        }
    }

    #[test]
    fn nesting_is_bounded_whatever_the_bracket() {
        for open in ['[', '{', '('] {
            let ok = format!("{}{}", open.to_string().repeat(MAX_NESTING), "");
            assert_eq!(scan(&ok), Ok(()));
            let deep = open.to_string().repeat(2_000);
            assert!(matches!(scan(&deep), Err(ScanError::TooDeep { .. })));
        }
        let mixed = "{ a(b: [{c: [".repeat(20);
        assert!(matches!(
            scan(&mixed),
            Err(ScanError::TooDeep { line: 1, .. })
        ));
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let inside = format!("{{ a(s: \"{}\") }}", "[".repeat(5_000));
        assert_eq!(scan(&inside), Ok(()));
        let commented = format!("#{}\n{{ a }}", "{".repeat(5_000));
        assert_eq!(scan(&commented), Ok(()));
    }

    #[test]
    fn size_and_tokens_are_bounded() {
        let big = " ".repeat(MAX_DOCUMENT_BYTES + 1);
        assert!(matches!(scan(&big), Err(ScanError::TooLarge { .. })));
        let many = "a ".repeat(MAX_TOKENS + 1);
        assert_eq!(scan(&many), Err(ScanError::TooManyTokens));
    }
}
