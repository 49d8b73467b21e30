//! The dependency direction between workspace crates (STYLE.md, "Shape of
//! the workspace"), checked over `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};

use cargo_metadata::{DependencyKind, Metadata, MetadataCommand};

const DOMAIN: &str = "portcullis-domain";
const CRYPTO: &str = "portcullis-crypto";
const SQLITE: &str = "portcullis-sqlite";
const POSTGRES: &str = "portcullis-postgres";
const HTTP: &str = "portcullis-http";
const ADAPTERS: &str = "portcullis-adapters";
const APP: &str = "portcullis";
const TESTS: &str = "portcullis-tests";

/// The store conformance suite and the in-memory store: a test kit, used as
/// a dev-dependency only, so it never ships in a binary.
const STORE_CONFORMANCE: &str = "portcullis-store-conformance";

/// The example application that embeds Portcullis (issue: documentation and reuse).
const NOTES_EXAMPLE: &str = "notes-example";

/// The benchmark driver, which seeds databases through the storage crate.
const BENCH: &str = "portcullis-bench";

/// The verifier for other teams' Rust services (issue 12): they take it
/// alone, so it depends on no workspace crate at all.
const RESOURCE_SERVER: &str = "portcullis-resource-server";

/// The example resource server built on it.
const RUST_RESOURCE_SERVER: &str = "rust-resource-server";

/// Packages that may know every workspace crate: the binaries under `apps/`
/// and the black-box tests.
const COMPOSITION_ROOTS: [&str; 5] = [APP, NOTES_EXAMPLE, BENCH, RUST_RESOURCE_SERVER, TESTS];

fn metadata() -> Metadata {
    MetadataCommand::new()
        .manifest_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"))
        .no_deps()
        .exec()
        .expect("cargo metadata runs")
}

/// Each workspace package's normal and build (non-dev) dependencies, by name.
fn non_dev_dependencies(metadata: &Metadata) -> BTreeMap<String, BTreeSet<String>> {
    metadata
        .workspace_packages()
        .into_iter()
        .map(|package| {
            let dependencies = package
                .dependencies
                .iter()
                .filter(|dependency| dependency.kind != DependencyKind::Development)
                .map(|dependency| dependency.name.clone())
                .collect();
            (package.name.to_string(), dependencies)
        })
        .collect()
}

/// The workspace crates among `package`'s non-dev dependencies.
fn workspace_edges(graph: &BTreeMap<String, BTreeSet<String>>, package: &str) -> BTreeSet<String> {
    let members: BTreeSet<&String> = graph.keys().collect();
    graph
        .get(package)
        .unwrap_or_else(|| panic!("{package} is a workspace member"))
        .iter()
        .filter(|dependency| members.contains(dependency))
        .cloned()
        .collect()
}

/// Fails naming every edge from `package` to a workspace crate outside `allowed`.
fn assert_only(graph: &BTreeMap<String, BTreeSet<String>>, package: &str, allowed: &[&str]) {
    let offending: Vec<String> = workspace_edges(graph, package)
        .into_iter()
        .filter(|dependency| !allowed.contains(&dependency.as_str()))
        .map(|dependency| format!("{package} -> {dependency}"))
        .collect();
    assert!(
        offending.is_empty(),
        "forbidden workspace dependencies (allowed for {package}: {allowed:?}): {offending:?}"
    );
}

#[test]
fn every_layered_crate_is_a_workspace_member() {
    let graph = non_dev_dependencies(&metadata());
    for package in [
        DOMAIN,
        CRYPTO,
        SQLITE,
        POSTGRES,
        HTTP,
        ADAPTERS,
        STORE_CONFORMANCE,
        RESOURCE_SERVER,
        RUST_RESOURCE_SERVER,
        APP,
        TESTS,
    ] {
        assert!(
            graph.contains_key(package),
            "{package} in {:?}",
            graph.keys()
        );
    }
}

#[test]
fn domain_and_crypto_depend_on_no_workspace_crate() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, DOMAIN, &[]);
    assert_only(&graph, CRYPTO, &[]);
}

#[test]
fn the_resource_server_crate_depends_on_no_workspace_crate() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, RESOURCE_SERVER, &[]);
}

#[test]
fn the_rust_resource_server_example_uses_only_the_resource_server_crate() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, RUST_RESOURCE_SERVER, &[RESOURCE_SERVER]);
}

#[test]
fn the_sqlite_store_depends_only_on_domain() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, SQLITE, &[DOMAIN]);
}

#[test]
fn the_postgres_store_depends_only_on_domain() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, POSTGRES, &[DOMAIN]);
}

#[test]
fn http_depends_on_the_domain_only() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, HTTP, &[DOMAIN]);
    let edges = workspace_edges(&graph, HTTP);
    assert!(
        edges.contains(DOMAIN),
        "{HTTP} -> {DOMAIN} is missing: {edges:?}"
    );
}

#[test]
fn adapters_depend_on_domain_and_crypto_only() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, ADAPTERS, &[DOMAIN, CRYPTO]);
    let edges = workspace_edges(&graph, ADAPTERS);
    for library in [DOMAIN, CRYPTO] {
        assert!(
            edges.contains(library),
            "{ADAPTERS} -> {library} is missing: {edges:?}"
        );
    }
}

#[test]
fn the_store_conformance_suite_depends_on_the_domain_only() {
    let graph = non_dev_dependencies(&metadata());
    assert_only(&graph, STORE_CONFORMANCE, &[DOMAIN]);
}

/// Every store runs the suite from its tests; nothing may link it for real.
#[test]
fn the_store_conformance_suite_is_only_ever_a_dev_dependency() {
    let graph = non_dev_dependencies(&metadata());
    let offending: Vec<&String> = graph
        .iter()
        .filter(|(_, dependencies)| dependencies.contains(STORE_CONFORMANCE))
        .map(|(package, _)| package)
        .collect();
    assert!(
        offending.is_empty(),
        "{STORE_CONFORMANCE} as a normal dependency of {offending:?}"
    );
}

#[test]
fn only_the_app_and_the_tests_depend_on_the_app_or_on_a_store() {
    let graph = non_dev_dependencies(&metadata());
    let offending: Vec<String> = graph
        .keys()
        .filter(|package| !COMPOSITION_ROOTS.contains(&package.as_str()))
        .flat_map(|package| {
            workspace_edges(&graph, package)
                .into_iter()
                .filter(move |dependency| {
                    dependency == APP
                        || ((dependency == SQLITE || dependency == POSTGRES)
                            && package != dependency)
                })
                .map(move |dependency| format!("{package} -> {dependency}"))
        })
        .collect();
    assert!(
        offending.is_empty(),
        "only {COMPOSITION_ROOTS:?} may depend on {APP}, {SQLITE} or {POSTGRES}: {offending:?}"
    );
}

#[test]
fn the_app_wires_every_library_crate() {
    let graph = non_dev_dependencies(&metadata());
    let edges = workspace_edges(&graph, APP);
    for library in [DOMAIN, CRYPTO, SQLITE, POSTGRES, HTTP, ADAPTERS] {
        assert!(
            edges.contains(library),
            "{APP} -> {library} is missing: {edges:?}"
        );
    }
}

#[test]
fn adapters_use_no_http_or_database_crate() {
    let metadata = metadata();
    let forbidden = [
        "poem",
        "poem-openapi",
        "rusqlite",
        "r2d2",
        "r2d2_sqlite",
        "tokio-postgres",
        "deadpool-postgres",
    ];
    let offending: Vec<String> = metadata
        .workspace_packages()
        .into_iter()
        .filter(|package| package.name.as_str() == ADAPTERS)
        .flat_map(|package| package.dependencies.iter())
        .filter(|dependency| {
            dependency.kind != DependencyKind::Development
                && forbidden.contains(&dependency.name.as_str())
        })
        .map(|dependency| format!("{ADAPTERS} -> {}", dependency.name))
        .collect();
    assert!(
        offending.is_empty(),
        "HTTP or a database client in the adapters: {offending:?}"
    );
}

#[test]
fn domain_and_crypto_use_no_http_database_or_async_runtime_crate() {
    let metadata = metadata();
    let forbidden = [
        "poem",
        "poem-openapi",
        "rusqlite",
        "r2d2",
        "r2d2_sqlite",
        "tokio-postgres",
        "deadpool-postgres",
        "tokio",
    ];
    let mut offending = Vec::new();
    for package in metadata.workspace_packages() {
        if package.name.as_str() != DOMAIN && package.name.as_str() != CRYPTO {
            continue;
        }
        for dependency in &package.dependencies {
            if dependency.kind != DependencyKind::Development
                && forbidden.contains(&dependency.name.as_str())
            {
                offending.push(format!(
                    "{} -> {} ({:?})",
                    package.name, dependency.name, dependency.kind
                ));
            }
        }
    }
    assert!(
        offending.is_empty(),
        "I/O crates in the pure layers: {offending:?}"
    );
}

#[test]
fn the_domain_records_no_metrics_and_only_the_app_installs_a_recorder() {
    let graph = non_dev_dependencies(&metadata());
    // The domain and crypto stay free of I/O and of the metrics facade:
    // outcomes are counted where they are visible (HTTP, adapters, the
    // app's store wrapper); the stores expose pool use, the app samples it.
    for package in [DOMAIN, CRYPTO, SQLITE, POSTGRES, STORE_CONFORMANCE] {
        let dependencies = &graph[package];
        assert!(
            !dependencies.contains("metrics"),
            "{package} -> metrics: count in the HTTP layer, the adapters or the app"
        );
    }
    let exporters: Vec<&String> = graph
        .iter()
        .filter(|(_, dependencies)| dependencies.contains("metrics-exporter-prometheus"))
        .map(|(package, _)| package)
        .collect();
    assert_eq!(
        exporters,
        [APP],
        "only {APP} installs the Prometheus recorder and serves /metrics"
    );
}
