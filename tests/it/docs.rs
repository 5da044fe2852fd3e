//! `docs/api.md` documents every root field, and each of its examples runs.

use crate::support::TestApp;
use serde_json::{Value, json};
use sqlx::PgPool;

/// One example of docs/api.md: a ```graphql block, with the ```json block
/// right after it when there is one: its variables, or (an object with
/// `errors`) the answer the text says it gets.
struct Example {
    query: String,
    variables: Value,
    /// The `extensions.code` of each error the documented answer shows.
    documented_errors: Vec<String>,
}

/// The fenced blocks of a markdown text: (language, body).
fn fenced_blocks(markdown: &str) -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        match (&mut current, trimmed.strip_prefix("```")) {
            (None, Some(language)) => current = Some((language.trim().to_owned(), String::new())),
            (Some(_), Some("")) => blocks.extend(current.take()),
            (Some((_, body)), _) => {
                body.push_str(line);
                body.push('\n');
            }
            (None, None) => {}
        }
    }
    blocks
}

fn examples(markdown: &str) -> Vec<Example> {
    let blocks = fenced_blocks(markdown);
    let mut examples = Vec::new();
    for (i, (language, body)) in blocks.iter().enumerate() {
        if language != "graphql" {
            continue;
        }
        let mut example = Example {
            query: body.clone(),
            variables: Value::Null,
            documented_errors: Vec::new(),
        };
        if let Some((next, json)) = blocks.get(i + 1)
            && next == "json"
        {
            let value: Value = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("not JSON after {body}: {e}\n{json}"));
            match value.get("errors").and_then(Value::as_array) {
                Some(errors) => {
                    example.documented_errors = errors
                        .iter()
                        .map(|e| {
                            e["extensions"]["code"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned()
                        })
                        .collect()
                }
                None => example.variables = value,
            }
        }
        examples.push(example);
    }
    examples
}

/// The placeholder id of the examples.
const PLACEHOLDER: &str = "00000000-0000-0000-0000-000000000000";

/// The first root field an example calls (`{ workspace(` → `workspace`).
fn root_field(query: &str) -> String {
    let body = query.split_once('{').map(|(_, b)| b).unwrap_or(query);
    body.trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// ```graphql blocks alone (for counting sections).
fn graphql_blocks(markdown: &str) -> Vec<String> {
    fenced_blocks(markdown)
        .into_iter()
        .filter(|(language, _)| language == "graphql")
        .map(|(_, body)| body)
        .collect()
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

#[test]
fn the_api_reference_covers_every_field() {
    let api = include_str!("../../docs/api.md");
    let fields = root_fields();
    assert!(fields.len() > 20, "{fields:?}");
    for field in &fields {
        assert!(
            api.contains(&format!("### {field}\n")),
            "docs/api.md has no section for {field}"
        );
    }
    let blocks = graphql_blocks(api);
    assert!(blocks.len() >= fields.len(), "{} examples", blocks.len());
}

/// Issue 25: the examples named `pool-a`/`pool-e`, which `examples/config.yaml`
/// (the README's) does not have, and ran against a pool that had them. Here
/// each runs as a reader runs it, in the page's order, with a SYSTEM_ADMIN
/// token, on a server started on `examples/config.yaml`: the placeholder id
/// stands for a workspace and a Deployment made first (as the reader would
/// put in theirs), and for the token the `createToken` example made. No
/// example may answer an error but the one its page shows.
#[sqlx::test]
async fn every_api_example_runs_on_the_example_config(db: PgPool) {
    let api = include_str!("../../docs/api.md");
    let config = include_str!("../../examples/config.yaml");
    let app = TestApp::spawn(config, db).await;
    let admin = app.admin().await;
    assert_eq!(app.available(&admin).await, ["team-a", "team-b", "team-c"]);
    let workspace = app.create_workspace(&admin, "docs").await.to_string();
    let deployment = app
        .ok(
            Some(&admin),
            crate::documents::CREATE_DEPLOYMENT,
            json!({"label": "etl-nightly", "workspaceId": workspace, "executor": "CeleryExecutor", "namespace": "team-b"}),
        )
        .await["createDeployment"]["id"]
        .as_str()
        .expect("a Deployment for the examples")
        .to_owned();
    let mut token = None::<String>;

    let examples = examples(api);
    assert!(examples.len() > 30, "{} examples", examples.len());
    let mut fields_run = Vec::new();
    for example in examples {
        let field = root_field(&example.query);
        let text = format!("{}{}", example.query, example.variables);
        let stands_for = if !text.contains(PLACEHOLDER) {
            None
        } else {
            Some(match field.as_str() {
                "workspace" | "workspaceDeployments" | "createDeployment" | "setWorkspaceQuota" => {
                    workspace.clone()
                }
                "deployment" | "updateDeployment" | "upsertDeployment" | "deleteDeployment" => {
                    deployment.clone()
                }
                "revokeToken" => token.clone().expect("createToken runs before revokeToken"),
                other => panic!("say what the placeholder of the {other} example stands for"),
            })
        };
        let replace = |s: &str| match &stands_for {
            Some(id) => s.replace(PLACEHOLDER, id),
            None => s.to_owned(),
        };
        let query = replace(&example.query);
        let variables: Value =
            serde_json::from_str(&replace(&example.variables.to_string())).unwrap();
        let answer = app.gql(Some(&admin), &query, variables).await;
        let codes: Vec<&str> = answer["errors"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| e["extensions"]["code"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(
            codes, example.documented_errors,
            "the example answers other errors than its page shows:\n{query}\n{answer}"
        );
        if field == "createToken" {
            token = answer["data"]["createToken"]["id"]
                .as_str()
                .map(str::to_owned);
        }
        if field == "deleteDeployment" {
            assert!(
                answer["data"]["deleteDeployment"]["deletedAt"].is_string(),
                "a hard delete answers when: {answer}"
            );
        }
        fields_run.push(field);
    }
    // The examples that change something ran on what they name, for real.
    for field in [
        "createDeployment",
        "deleteDeployment",
        "cordonNamespace",
        "revokeToken",
    ] {
        assert!(fields_run.iter().any(|f| f == field), "{field} ran");
    }
    assert_eq!(
        app.available(&admin).await,
        ["team-b", "team-c"],
        "team-a holds the example's Deployment"
    );
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

/// Issue 25: the token page named only `DATABASE_URL`, which the embedded
/// default does not use. It gives the README's command for the embedded
/// default and the `DATABASE_URL` one for an external database.
#[sqlx::test]
async fn the_token_page_gives_the_command_for_either_database(db: PgPool) {
    let app = TestApp::spawn(include_str!("../../examples/config.yaml"), db).await;
    let page = reqwest::get(app.url("/v1/token"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let embedded = "cargo run --release -- token create --config examples/config.yaml";
    assert!(page.contains(embedded), "{page}");
    assert!(
        include_str!("../../README.md").contains(embedded),
        "the README gives the same command"
    );
    assert!(page.contains("no <code>DATABASE_URL</code> set"), "{page}");
    assert!(page.contains("DATABASE_URL='postgres://"), "{page}");
    assert!(page.contains("oAuth Token:"), "{page}");
}
