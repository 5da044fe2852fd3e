//! "did you mean `enabled`?" for an unknown key: the one known key within a
//! small edit distance, so a typo is named with its fix.

/// Edits (Damerau-Levenshtein: insert, delete, replace, swap two neighbours)
/// at most between a typo and the key meant. Two catches `enabeld` (one swap)
/// and `preCreatedNamespace` (one letter) without pairing unrelated keys.
const MAX_EDITS: usize = 2;

/// The known key `name` most likely meant, when exactly one is close.
/// Case is ignored (`Enabled` is `enabled`), and a short key must be closer
/// (at most a third of its letters changed), so `mo` is not taken for `mode`.
/// Two or more close keys suggest none: a guess between them would mislead
/// as often as help.
pub fn did_you_mean<'a>(name: &str, known: &[&'a str]) -> Option<&'a str> {
    let name = name.to_lowercase();
    let mut close = known.iter().filter(|k| {
        let edits = strsim::damerau_levenshtein(&name, &k.to_lowercase());
        edits <= MAX_EDITS.min(k.chars().count() / 3)
    });
    match (close.next(), close.next()) {
        (Some(only), None) => Some(*only),
        _ => None,
    }
}

/// `; did you mean `X`?` to append to a message, or nothing.
pub fn hint(name: &str, known: &[&str]) -> String {
    did_you_mean(name, known)
        .map(|k| format!("; did you mean `{k}`?"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOLS: &[&str] = &["enabled", "createRbac", "namespaces"];

    #[test]
    fn a_swap_a_missing_letter_or_the_wrong_case_finds_the_key() {
        assert_eq!(did_you_mean("enabeld", POOLS), Some("enabled"));
        assert_eq!(did_you_mean("Enabled", POOLS), Some("enabled"));
        assert_eq!(did_you_mean("namespace", POOLS), Some("namespaces"));
        assert_eq!(did_you_mean("createRBAC", POOLS), Some("createRbac"));
    }

    #[test]
    fn nothing_close_or_two_close_suggests_nothing() {
        assert_eq!(did_you_mean("typo", POOLS), None);
        assert_eq!(did_you_mean("x", &["mode"]), None);
        // `namez` is one edit from `name` and one from `names`: no guess.
        assert_eq!(did_you_mean("namez", &["name", "names"]), None);
    }

    #[test]
    fn a_short_key_needs_a_closer_match() {
        assert_eq!(did_you_mean("mod", &["mode"]), Some("mode"));
        assert_eq!(did_you_mean("mo", &["mode"]), None);
        assert_eq!(did_you_mean("lsten", &["listen"]), Some("listen"));
    }
}
