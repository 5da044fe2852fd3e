//! Pool reads answered from bytes built once per version of the pool copy.
//!
//! A document that only reads `availableNamespaces` (its `name`s and
//! `__typename`s, no arguments, variables, fragments or directives) has one
//! answer per version of this replica's pool copy, whoever asks. The first
//! request of a version runs through async-graphql as usual and its answer
//! is kept; later ones get those bytes after their own token is checked.
//! Everything else, and every refused caller, takes the usual path, so
//! answers and errors are word for word what async-graphql gives.
//!
//! Answers are kept per shape (the response keys and fields selected), not
//! per document text: the astro CLI's two eras of the same read (an anonymous
//! and a named operation, other white space) share one answer. The bytes kept
//! grow with the pool, so that the few shapes in use (the CLI's, the UI's
//! with `__typename`) stay kept side by side at the largest pool instead of
//! pushing each other out.

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Documents longer than this are not looked at (the CLI's is ~60 bytes).
const MAX_DOCUMENT: usize = 1024;
/// Documents remembered (pure or not); beyond, the memory starts afresh.
const MAX_DOCUMENTS: usize = 256;
/// Answer bytes kept at most over all shapes on a small pool; on a larger
/// one, [`answer_bytes_for_pool`].
const MAX_ANSWER_BYTES: usize = 16 << 20;
/// Whole-pool answers kept side by side at any pool size.
const KEPT_WHOLE_ANSWERS: usize = 2;

/// Answer bytes kept at most on a pool of `pool_size` namespaces: two whole
/// answers of the widest pure read (`name` and `__typename`, the longest names).
pub fn answer_bytes_for_pool(pool_size: usize) -> usize {
    crate::graphql::limits::for_pool(
        MAX_ANSWER_BYTES,
        KEPT_WHOLE_ANSWERS * crate::graphql::limits::WHOLE_POOL_READ_BYTES,
        pool_size,
    )
}

type Key = (String, Option<String>);
/// What a pure read selects, in order: its answer's shape.
type Shape = String;

#[derive(Default)]
struct Memory {
    /// Each document's shape when it is a pure pool read, else `None`.
    pure: HashMap<Key, Option<Shape>>,
    /// Pure reads' answers by shape, with the copy version they hold.
    answers: HashMap<Shape, (u64, Bytes)>,
    answer_bytes: usize,
}

#[derive(Default)]
pub struct PoolReads {
    memory: Mutex<Memory>,
    /// One build at a time per shape (see [`PoolReads::build_turn`]).
    builds: Mutex<HashMap<Shape, Arc<tokio::sync::Mutex<()>>>>,
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
        let shape = match memory.pure.get(&key) {
            Some(shape) => shape.clone(),
            None => {
                let shape = async_graphql::parser::parse_query(query)
                    .ok()
                    .and_then(|document| pure_read_shape(&document, operation));
                if memory.pure.len() >= MAX_DOCUMENTS {
                    memory.pure.clear();
                }
                memory.pure.insert(key, shape.clone());
                shape
            }
        };
        let Some(shape) = shape else {
            return Lookup::Other;
        };
        let bytes = version.and_then(|version| {
            memory
                .answers
                .get(&shape)
                .filter(|(at, _)| *at == version)
                .map(|(_, bytes)| bytes.clone())
        });
        Lookup::Pure(bytes)
    }

    /// Keeps the answer of a pure read that ran wholly at `version`, within
    /// `max_bytes` over all shapes: answers of older versions go first, then
    /// the others.
    pub fn keep(
        &self,
        query: &str,
        operation: Option<&str>,
        version: u64,
        bytes: Bytes,
        max_bytes: usize,
    ) {
        let key = (query.to_owned(), operation.map(str::to_owned));
        let mut memory = self.lock();
        let Some(Some(shape)) = memory.pure.get(&key).cloned() else {
            return;
        };
        if let Some((_, old)) = memory.answers.remove(&shape) {
            memory.answer_bytes -= old.len();
        }
        if memory.answer_bytes + bytes.len() > max_bytes {
            memory.answers.retain(|_, (at, _)| *at == version);
            memory.answer_bytes = memory.answers.values().map(|(_, b)| b.len()).sum();
        }
        if memory.answer_bytes + bytes.len() > max_bytes {
            memory.answers.clear();
            memory.answer_bytes = 0;
        }
        memory.answer_bytes += bytes.len();
        memory.answers.insert(shape, (version, bytes));
    }

    /// This pure read's turn to build its answer: one request at a time per
    /// shape, so that those arriving while one builds take its kept answer
    /// (they look again once it is their turn). `None` when not pure, or
    /// when the turn did not come within the large-answer wait (the request
    /// then builds without it and meets the large-answer permit, so a slow
    /// build never queues the others for longer than that).
    pub async fn build_turn(
        &self,
        query: &str,
        operation: Option<&str>,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let key = (query.to_owned(), operation.map(str::to_owned));
        let shape = self.lock().pure.get(&key).cloned().flatten()?;
        let turn = {
            let mut builds = self.builds.lock().unwrap_or_else(|e| e.into_inner());
            if builds.len() >= MAX_DOCUMENTS {
                builds.retain(|_, turn| Arc::strong_count(turn) > 1);
            }
            builds.entry(shape).or_default().clone()
        };
        tokio::time::timeout(crate::graphql::LARGE_ANSWER_WAIT, turn.lock_owned())
            .await
            .ok()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One query operation, no variables, directives or fragments, selecting
/// only `availableNamespaces { name __typename }` (aliases allowed) and `__typename`.
pub fn is_pure_pool_read(document: &ExecutableDocument) -> bool {
    pure_read_shape(document, None).is_some()
}

/// A pure pool read's shape: each selection's response key and field, nested
/// in braces (`{a:availableNamespaces{name:name}}`); `None` when not pure.
///
/// The operation name the request gives takes part: an anonymous operation
/// asked for by name, or a named one by another name, is an error, never
/// the answer kept for the shape.
fn pure_read_shape(document: &ExecutableDocument, wanted: Option<&str>) -> Option<Shape> {
    let operation = match &document.operations {
        DocumentOperations::Single(operation) if wanted.is_none() => operation,
        DocumentOperations::Single(_) => return None,
        DocumentOperations::Multiple(operations) if operations.len() == 1 => {
            let (name, operation) = operations.iter().next()?;
            if wanted.is_some_and(|wanted| wanted != name.as_str()) {
                return None;
            }
            operation
        }
        DocumentOperations::Multiple(_) => return None,
    };
    let operation = &operation.node;
    let pure = document.fragments.is_empty()
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
        });
    pure.then(|| shape(&operation.selection_set.node))
}

/// The response keys and fields of `set`, nested (the document is a pure
/// read, so every selection is a plain field).
fn shape(set: &SelectionSet) -> Shape {
    let mut out = String::from("{");
    for selection in &set.items {
        if let Selection::Field(field) = &selection.node {
            let field = &field.node;
            out.push_str(field.response_key().node.as_str());
            out.push(':');
            out.push_str(field.name.node.as_str());
            if !field.selection_set.node.items.is_empty() {
                out.push_str(&shape(&field.selection_set.node));
            }
            out.push(',');
        }
    }
    out.push('}');
    out
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

    #[tokio::test]
    async fn one_build_at_a_time_per_shape() {
        let reads = PoolReads::default();
        let (q, named) = (
            "{ availableNamespaces { name } }",
            "query availableNamespaces { availableNamespaces { name } }",
        );
        assert!(reads.build_turn(q, None).await.is_none(), "looked up first");
        let _ = reads.lookup(q, None, Some(1));
        let _ = reads.lookup(named, None, Some(1));
        let turn = reads.build_turn(q, None).await;
        assert!(turn.is_some());
        // The other era of the same shape waits for this one's turn.
        let waiting = tokio::time::timeout(
            std::time::Duration::from_millis(50),
            reads.build_turn(named, None),
        )
        .await;
        assert!(waiting.is_err());
        drop(turn);
        assert!(reads.build_turn(named, None).await.is_some());
    }

    #[test]
    fn answers_are_kept_per_version_and_bounded() {
        let reads = PoolReads::default();
        let q = "{ availableNamespaces { name } }";
        assert!(matches!(reads.lookup(q, None, Some(1)), Lookup::Pure(None)));
        reads.keep(q, None, 1, Bytes::from_static(b"one"), MAX_ANSWER_BYTES);
        assert!(matches!(reads.lookup(q, None, Some(1)), Lookup::Pure(Some(b)) if b == "one"));
        // The CLI's other era of the same read shares the answer.
        let named = "query availableNamespaces {\n  availableNamespaces { name }\n}";
        assert!(matches!(reads.lookup(named, None, Some(1)), Lookup::Pure(Some(b)) if b == "one"));
        assert!(matches!(
            reads.lookup(named, Some("availableNamespaces"), Some(1)),
            Lookup::Pure(Some(b)) if b == "one"
        ));
        assert!(matches!(
            reads.lookup(named, Some("other"), Some(1)),
            Lookup::Other
        ));
        assert!(matches!(reads.lookup(q, None, Some(2)), Lookup::Pure(None)));
        assert!(matches!(reads.lookup(q, None, None), Lookup::Pure(None)));
        assert!(matches!(reads.lookup(q, Some("x"), Some(1)), Lookup::Other));
        assert!(matches!(
            reads.lookup("{ appConfig { version } }", None, Some(1)),
            Lookup::Other
        ));
        let big = Bytes::from(vec![b'x'; MAX_ANSWER_BYTES / 2 + 1]);
        let aliased = "{ a: availableNamespaces { name } }";
        reads.keep(q, None, 3, big.clone(), MAX_ANSWER_BYTES);
        assert!(matches!(
            reads.lookup(aliased, None, Some(3)),
            Lookup::Pure(None)
        ));
        reads.keep(aliased, None, 3, big.clone(), MAX_ANSWER_BYTES);
        assert!(reads.lock().answer_bytes <= MAX_ANSWER_BYTES);
        // With the room a large pool gives, two shapes stay side by side.
        let room = answer_bytes_for_pool(crate::graphql::limits::MAX_POOL_NAMESPACES);
        assert!(
            room >= 2 * 100_000 * 100,
            "two answers of 100,000 long names"
        );
        reads.keep(q, None, 4, big.clone(), room);
        reads.keep(aliased, None, 4, big, room);
        assert!(matches!(
            reads.lookup(q, None, Some(4)),
            Lookup::Pure(Some(_))
        ));
        assert!(matches!(
            reads.lookup(aliased, None, Some(4)),
            Lookup::Pure(Some(_))
        ));
    }
}
