//! Bounds on the config text, checked before the YAML parser sees it: its
//! size, and how deep its collections nest, in one linear pass. A parser
//! that meets a 200 KB run of `[[[[` spends seconds before its own
//! recursion limit; a 50 MB file would be read whole.

/// The largest config file read (Helm values of a 100,000-name pool are ~2 MiB).
pub const MAX_CONFIG_BYTES: usize = 16 * 1024 * 1024;
/// Collections inside collections, flow (`[`, `{`) and block (indentation,
/// `- - x`) together; nspool's own keys nest 7 deep.
pub const MAX_CONFIG_NESTING: usize = 64;

/// The error for a file of `bytes`, when it is too large.
pub fn size_error(bytes: u64) -> Option<String> {
    (bytes > MAX_CONFIG_BYTES as u64).then(|| {
        format!(
            "the config file is {bytes} bytes; the limit is {MAX_CONFIG_BYTES} bytes ({} MiB)",
            MAX_CONFIG_BYTES / (1024 * 1024)
        )
    })
}

/// The 1-based line where nesting first goes past [`MAX_CONFIG_NESTING`].
pub fn too_deep_at(text: &str) -> Option<usize> {
    let mut scan = Scan::default();
    for (number, line) in text.lines().enumerate() {
        if scan.line(line) > MAX_CONFIG_NESTING {
            return Some(number + 1);
        }
    }
    None
}

#[derive(Default)]
struct Scan {
    /// Columns of the open block levels, increasing.
    block: Vec<usize>,
    /// Open `[` and `{`.
    flow: usize,
    /// A quoted scalar continues from the previous line.
    quote: Option<char>,
    /// Lines indented deeper than this belong to a block scalar (`|`, `>`).
    block_scalar: Option<usize>,
}

impl Scan {
    /// Reads one line; returns the nesting reached on it.
    fn line(&mut self, line: &str) -> usize {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let rest = &line[indent..];
        if let Some(parent) = self.block_scalar {
            if rest.is_empty() || indent > parent {
                return self.depth();
            }
            self.block_scalar = None;
        }
        if self.flow == 0 && self.quote.is_none() && !rest.is_empty() && !rest.starts_with('#') {
            while self.block.last().is_some_and(|&top| top > indent) {
                self.block.pop();
            }
            if self.block.last() != Some(&indent) {
                self.block.push(indent);
            }
            // `- - - x`: each dash opens a sequence on the same line.
            let mut column = indent;
            let mut item = rest;
            while let Some(after) = item.strip_prefix("- ").or_else(|| item.strip_prefix("-\t")) {
                let spaces = after.len() - after.trim_start().len();
                column += 2 + spaces;
                self.block.push(column);
                item = after.trim_start();
            }
        }
        let mut deepest = self.depth();
        let mut previous = ' ';
        for c in rest.chars() {
            match self.quote {
                Some('\'') if c == '\'' => self.quote = None,
                Some('"') if c == '"' && previous != '\\' => self.quote = None,
                Some(_) => {}
                None => match c {
                    '#' if previous == ' ' || previous == '\t' => break,
                    '\'' | '"' if starts_token(previous) || self.flow > 0 => self.quote = Some(c),
                    '[' | '{' if self.flow > 0 || starts_token(previous) => {
                        self.flow += 1;
                        deepest = deepest.max(self.depth());
                    }
                    ']' | '}' if self.flow > 0 => self.flow -= 1,
                    _ => {}
                },
            }
            previous = if previous == '\\' && c == '\\' {
                ' '
            } else {
                c
            };
        }
        if self.flow == 0 && self.quote.is_none() && ends_block_scalar(rest) {
            self.block_scalar = Some(indent);
        }
        deepest
    }

    fn depth(&self) -> usize {
        self.block.len() + self.flow
    }
}

/// Whether a `[`, `{` or quote after `previous` starts a value (not the middle of a word).
fn starts_token(previous: char) -> bool {
    matches!(previous, ' ' | '\t' | ':' | '-' | ',' | '?')
}

/// `key: |`, `- >-` and the like: the lines below are one scalar.
fn ends_block_scalar(rest: &str) -> bool {
    let text = rest.split(" #").next().unwrap_or(rest).trim_end();
    let Some(last) = text.split_whitespace().last() else {
        return false;
    };
    let indicator = last.starts_with('|') || last.starts_with('>');
    indicator
        && last[1..]
            .chars()
            .all(|c| c == '-' || c == '+' || c.is_ascii_digit())
        && text.len() > last.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_configs_pass() {
        let text = "global:\n  features:\n    namespacePools:\n      enabled: true\n      namespaces:\n        names: [a, b, {c: [d]}]\n        more:\n          - - x\n            - y\nnote: |\n        deep\n                deeper\n                        deepest\nregex: 'a[b{c'\nplain: a[b\n";
        assert_eq!(too_deep_at(text), None);
        let names = (0..100_000).map(|i| format!("ns-{i}")).collect::<Vec<_>>();
        assert_eq!(
            too_deep_at(&format!("names: [{}]\n", names.join(", "))),
            None
        );
    }

    #[test]
    fn deep_flow_block_and_dash_nesting_are_found() {
        let flow = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(too_deep_at(&flow), Some(1));
        let block: String = (0..100)
            .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
            .collect();
        assert_eq!(too_deep_at(&block), Some(MAX_CONFIG_NESTING + 1));
        let dashes = format!("{}x\n", "- ".repeat(200));
        assert_eq!(too_deep_at(&dashes), Some(1));
    }

    #[test]
    fn the_size_error_names_the_size() {
        assert_eq!(size_error(1024), None);
        let error = size_error(50 * 1024 * 1024).unwrap();
        assert!(error.contains("52428800 bytes"), "{error}");
    }
}
