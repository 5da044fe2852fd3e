//! `docs/api.md` documents every root field, and each of its examples runs.

use crate::support::{POOL_OF_5, TestApp};
use serde_json::Value;
use sqlx::PgPool;

/// The ```graphql blocks of a markdown text.
fn graphql_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```graphql") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The field names of `type Query` and `type Mutation` in the SDL.
fn root_fields() -> Vec<String> {
    let sdl = nspool::graphql::sdl();
    let mut fields = Vec::new();
    for root in ["type Query {", "type Mutation {"] {
        let body = sdl.split(root).nth(1).expect("root type");
        let body = body.split("\n}").next().expect("end of type");
        let mut in_doc = false;
        for line in body.lines() {
            let line = line.trim();
            if line == "\"\"\"" {
                in_doc = !in_doc;
                continue;
            }
            if in_doc || line.is_empty() || line.starts_with("\"\"\"") {
                continue;
            }
            let name: String = line
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if !name.is_empty() {
                fields.push(name);
            }
        }
    }
    fields
}

#[sqlx::test]
async fn the_api_reference_covers_every_field_and_its_examples_run(db: PgPool) {
    let api = include_str!("../../docs/api.md");
    let fields = root_fields();
    assert!(fields.len() > 20, "{fields:?}");
    for field in &fields {
        assert!(
            api.contains(&format!("### {field}\n")),
            "docs/api.md has no section for {field}"
        );
    }
    let app = TestApp::spawn(POOL_OF_5, db).await;
    let admin = app.admin().await;
    let blocks = graphql_blocks(api);
    assert!(blocks.len() >= fields.len(), "{} examples", blocks.len());
    for block in blocks {
        let value = app.gql(Some(&admin), &block, Value::Null).await;
        for error in value["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"].as_str().unwrap_or_default();
            assert!(
                ["NOT_FOUND", "BAD_USER_INPUT", "CONFLICT"].contains(&code),
                "the example does not run:\n{block}\n{value}"
            );
        }
    }
}

/// Every key path of a YAML mapping (`a.b.c`), lists not descended.
fn key_paths(value: &serde_yaml::Value, prefix: &str, out: &mut Vec<String>) {
    if let serde_yaml::Value::Mapping(map) = value {
        for (key, child) in map {
            let key = key.as_str().unwrap_or_default();
            let path = if prefix.is_empty() {
                key.to_owned()
            } else {
                format!("{prefix}.{key}")
            };
            if matches!(child, serde_yaml::Value::Mapping(_)) {
                key_paths(child, &path, out);
            } else {
                out.push(path);
            }
        }
    }
}

#[test]
fn the_configuration_reference_names_every_key_and_variable() {
    let reference = include_str!("../../docs/configuration.md");
    for (key, variable) in nspool::config::ENV_OVERRIDES {
        assert!(
            reference.contains(&format!("`nspool.{key}`")),
            "docs/configuration.md lacks nspool.{key}"
        );
        assert!(
            reference.contains(&format!("`{variable}`")),
            "docs/configuration.md lacks {variable}"
        );
    }
    let example: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../../examples/config.yaml")).unwrap();
    let mut paths = Vec::new();
    key_paths(&example, "", &mut paths);
    assert!(paths.len() > 15, "{paths:?}");
    for path in paths {
        assert!(
            reference.contains(&format!("`{path}`")),
            "docs/configuration.md lacks {path}"
        );
    }
}

#[test]
fn the_configuration_reference_is_the_code_key_table() {
    let reference = include_str!("../../docs/configuration.md");
    let table = nspool::config::keys::reference_markdown();
    assert!(
        reference.contains(&table),
        "docs/configuration.md is stale: put the output of `nspool config keys` in it"
    );
}

#[test]
fn the_budgets_table_is_the_code_table_and_each_row_is_tested() {
    let operations = include_str!("../../docs/operations.md");
    let table = nspool::budgets::markdown();
    if !operations.contains(&table) {
        std::fs::write("target/budgets-table.md", &table).expect("write");
        panic!("docs/operations.md is stale: put target/budgets-table.md in its Budgets section");
    }
    // Every row names a test that exists in tests/it/.
    for row in nspool::budgets::table() {
        let (module, name) = row.test.split_once("::").expect("module::test");
        let path = format!("{}/tests/it/{module}.rs", env!("CARGO_MANIFEST_DIR"));
        let source = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("{path}"));
        assert!(
            source.contains(&format!("fn {name}(")),
            "{} names {}, which {path} lacks",
            row.resource,
            row.test
        );
    }
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains("docs/operations.md#budgets"),
        "the README links the budgets table"
    );
}
