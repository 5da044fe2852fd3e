//! Pool reads answered from bytes built once per version of the pool copy.
//!
//! A document that only reads `availableNamespaces` (its `name`s and
//! `__typename`s, no arguments, variables, fragments or directives) has one
//! answer per version of this replica's pool copy, whoever asks. The first
//! request of a version runs through async-graphql as usual and its answer
//! is kept; later ones get those bytes after their own token is checked.
//! Everything else, and every refused caller, takes the usual path, so
//! answers and errors are word for word what async-graphql gives.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;

/// Documents longer than this are not looked at (the CLI's is ~60 bytes).
const MAX_DOCUMENT: usize = 1024;
/// Documents remembered (pure or not); beyond, the memory starts afresh.
const MAX_DOCUMENTS: usize = 256;
/// Answer bytes kept at most, over all documents; beyond, they start afresh.
const MAX_ANSWER_BYTES: usize = 16 << 20;

type Key = (String, Option<String>);

#[derive(Default)]
struct Memory {
    /// Whether a document is a pure pool read.
    pure: HashMap<Key, bool>,
    /// Pure documents' answers and the copy version they hold.
    answers: HashMap<Key, (u64, Bytes)>,
    answer_bytes: usize,
}

#[derive(Default)]
pub struct PoolReads {
    memory: Mutex<Memory>,
}

/// What the cache knows about one request.
pub enum Lookup {
    /// Not a pure pool read: the usual path.
    Other,
    /// A pure pool read; the bytes when this version's answer is kept.
    Pure(Option<Bytes>),
}

impl PoolReads {
    pub fn lookup(&self, query: &str, operation: Option<&str>, version: Option<u64>) -> Lookup {
        if query.len() > MAX_DOCUMENT {
            return Lookup::Other;
        }
        let key = (query.to_owned(), operation.map(str::to_owned));
        let mut memory = self.lock();
        let pure = match memory.pure.get(&key) {
            Some(pure) => *pure,
            None => {
                let pure = async_graphql::parser::parse_query(query)
                    .is_ok_and(|document| is_pure_pool_read(&document));
                if memory.pure.len() >= MAX_DOCUMENTS {
                    memory.pure.clear();
                }
                memory.pure.insert(key.clone(), pure);
                pure
            }
        };
        if !pure {
            return Lookup::Other;
        }
        let bytes = version.and_then(|version| {
            memory
                .answers
                .get(&key)
                .filter(|(at, _)| *at == version)
                .map(|(_, bytes)| bytes.clone())
        });
        Lookup::Pure(bytes)
    }

    /// Keeps the answer of a pure read that ran wholly at `version`.
    pub fn keep(&self, query: &str, operation: Option<&str>, version: u64, bytes: Bytes) {
        let key = (query.to_owned(), operation.map(str::to_owned));
        let mut memory = self.lock();
        if memory.answer_bytes + bytes.len() > MAX_ANSWER_BYTES {
            memory.answers.clear();
            memory.answer_bytes = 0;
        }
        memory.answer_bytes += bytes.len();
        if let Some((_, old)) = memory.answers.insert(key, (version, bytes)) {
            memory.answer_bytes -= old.len();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One query operation, no variables, directives or fragments, selecting
/// only `availableNamespaces { name __typename }` (aliases allowed) and `__typename`.
pub fn is_pure_pool_read(document: &ExecutableDocument) -> bool {
    let operation = match &document.operations {
        DocumentOperations::Single(operation) => operation,
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            match operations.values().next() {
                Some(operation) => operation,
                None => return false,
            }
        }
        DocumentOperations::Multiple(_) => return false,
    };
    let operation = &operation.node;
    document.fragments.is_empty()
        && operation.ty == OperationType::Query
        && operation.variable_definitions.is_empty()
        && operation.directives.is_empty()
        && only_fields(&operation.selection_set.node, |name, children| match name {
            "__typename" => children.items.is_empty(),
            "availableNamespaces" => {
                !children.items.is_empty()
                    && only_fields(children, |name, grandchildren| {
                        matches!(name, "name" | "__typename") && grandchildren.items.is_empty()
                    })
            }
            _ => false,
        })
}

/// Every selection is a plain field (no arguments or directives) that `allowed` accepts.
fn only_fields(set: &SelectionSet, allowed: impl Fn(&str, &SelectionSet) -> bool) -> bool {
    set.items.iter().all(|selection| match &selection.node {
        Selection::Field(field) => {
            let field = &field.node;
            field.arguments.is_empty()
                && field.directives.is_empty()
                && allowed(field.name.node.as_str(), &field.selection_set.node)
        }
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pure(query: &str) -> bool {
        is_pure_pool_read(&async_graphql::parser::parse_query(query).expect(query))
    }

    #[test]
    fn only_plain_reads_of_the_offered_names_are_pure() {
        for query in [
            "{ availableNamespaces { name } }",
            "query availableNamespaces {\n  availableNamespaces { name }\n}",
            "{ a: availableNamespaces { n: name __typename } __typename }",
        ] {
            assert!(pure(query), "{query}");
        }
        for query in [
            "{ availableNamespaces { name } appConfig { version } }",
            "{ availableNamespaces(clusterId: \"x\") { name } }",
            "{ availableNamespaces { name @skip(if: true) } }",
            "query($x: Boolean!) { availableNamespaces { name } }",
            "{ availableNamespaces { ...f } } fragment f on Namespace { name }",
            "{ availableNamespaces { ... on Namespace { name } } }",
            "mutation { availableNamespaces { name } }",
            "query a { availableNamespaces { name } } query b { availableNamespaces { name } }",
            "{ availableNamespaces }",
        ] {
            assert!(!pure(query), "{query}");
        }
    }

    #[test]
    fn answers_are_kept_per_version_and_bounded() {
        let reads = PoolReads::default();
        let q = "{ availableNamespaces { name } }";
        assert!(matches!(reads.lookup(q, None, Some(1)), Lookup::Pure(None)));
        reads.keep(q, None, 1, Bytes::from_static(b"one"));
        assert!(matches!(reads.lookup(q, None, Some(1)), Lookup::Pure(Some(b)) if b == "one"));
        assert!(matches!(reads.lookup(q, None, Some(2)), Lookup::Pure(None)));
        assert!(matches!(reads.lookup(q, None, None), Lookup::Pure(None)));
        assert!(matches!(
            reads.lookup(q, Some("x"), Some(1)),
            Lookup::Pure(None)
        ));
        assert!(matches!(
            reads.lookup("{ appConfig { version } }", None, Some(1)),
            Lookup::Other
        ));
        let big = Bytes::from(vec![b'x'; MAX_ANSWER_BYTES / 2 + 1]);
        reads.keep(q, None, 3, big.clone());
        reads.keep("{ a: availableNamespaces { name } }", None, 3, big);
        assert!(reads.lock().answer_bytes <= MAX_ANSWER_BYTES);
    }
}
