//! Answers that refuse stay small: at most [`MAX_ERRORS`] errors (the last
//! one says how many more there were), each message cut to
//! [`MAX_ERROR_MESSAGE_BYTES`] and its locations to [`MAX_ERROR_LOCATIONS`],
//! and the errors together under [`MAX_REFUSAL_BYTES`]. A document of a few
//! kilobytes can otherwise make validation answer thousands of errors.

use super::limits::{MAX_ERROR_LOCATIONS, MAX_ERROR_MESSAGE_BYTES, MAX_ERRORS, MAX_REFUSAL_BYTES};
use async_graphql::ServerError;

/// Room kept for the closing error and the answer's own braces.
const RESERVE: usize = 1024;

/// Cuts `text` to at most `max` bytes at a character boundary, marking the cut.
fn cut(text: &mut String, max: usize) {
    if text.len() <= max {
        return;
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text.push('…');
}

/// Applies the caps; `true` when something was cut or left out.
pub fn cap(errors: &mut Vec<ServerError>) -> bool {
    let mut capped = false;
    let total = errors.len();
    let mut bytes = 0usize;
    let mut kept = 0usize;
    for error in errors.iter_mut() {
        if error.message.len() > MAX_ERROR_MESSAGE_BYTES {
            cut(&mut error.message, MAX_ERROR_MESSAGE_BYTES);
            capped = true;
        }
        if error.locations.len() > MAX_ERROR_LOCATIONS {
            error.locations.truncate(MAX_ERROR_LOCATIONS);
            capped = true;
        }
        let size = serde_json::to_vec(&*error).map_or(MAX_REFUSAL_BYTES, |b| b.len() + 1);
        if kept + 1 >= MAX_ERRORS || bytes + size > MAX_REFUSAL_BYTES - RESERVE {
            break;
        }
        bytes += size;
        kept += 1;
    }
    if kept < total {
        errors.truncate(kept);
        let mut more = ServerError::new(
            format!(
                "{} more errors were left out (an answer holds at most {MAX_ERRORS})",
                total - kept
            ),
            None,
        );
        // Coded like the first error it follows (they come from one pass).
        let code = errors
            .first()
            .and_then(|e| e.extensions.as_ref())
            .and_then(|e| e.get("code"))
            .cloned()
            .unwrap_or_else(|| super::errors::VALIDATION_FAILED.into());
        more.extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
        errors.push(more);
        capped = true;
    }
    capped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(message: &str) -> ServerError {
        ServerError::new(message, None)
    }

    #[test]
    fn thousands_of_errors_become_a_hundred_that_say_how_many_more() {
        let mut errors: Vec<_> = (0..7_399).map(|i| error(&format!("error {i}"))).collect();
        assert!(cap(&mut errors));
        assert_eq!(errors.len(), MAX_ERRORS);
        assert!(
            errors[99].message.starts_with("7300 more errors"),
            "{}",
            errors[99].message
        );
        let bytes = serde_json::to_vec(&errors).unwrap().len();
        assert!(bytes < MAX_REFUSAL_BYTES, "{bytes}");
    }

    #[test]
    fn long_messages_are_cut_at_a_character_and_big_errors_fit_the_byte_cap() {
        let mut errors: Vec<_> = (0..100).map(|_| error(&"é".repeat(5_000))).collect();
        assert!(cap(&mut errors));
        assert!(errors[0].message.len() <= MAX_ERROR_MESSAGE_BYTES);
        assert!(errors[0].message.ends_with('…'));
        let bytes = serde_json::to_vec(&errors).unwrap().len();
        assert!(bytes < MAX_REFUSAL_BYTES, "{bytes}");
        assert!(
            errors
                .last()
                .unwrap()
                .message
                .contains("more errors were left out")
        );
    }

    #[test]
    fn a_few_small_errors_are_left_alone() {
        let mut errors = vec![error("one"), error("two")];
        assert!(!cap(&mut errors));
        assert_eq!(errors.len(), 2);
    }
}
