//! The example against the real Portcullis, in-process.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests")]

use poem::Server;
use poem::listener::{Acceptor, Listener, TcpListener};
use portcullis::Settings;
use portcullis_resource_server::{RemoteVerifier, ResourceServerConfig};
use portcullis_tests::{TestApp, test_args};
use serde_json::Value;

#[tokio::test]
async fn the_protected_route_serves_a_portcullis_user_and_refuses_anyone_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut args = test_args(dir.path().join("data"));
    args.jwt_secret = None;
    let settings = Settings::resolve(&args).expect("settings");
    let portcullis = TestApp::spawn_with(dir, settings).await;

    let verifier = RemoteVerifier::new(ResourceServerConfig::new(
        portcullis.base.clone(),
        "portcullis",
    ))
    .await
    .expect("discovery");
    let acceptor = TcpListener::bind("127.0.0.1:0")
        .into_acceptor()
        .await
        .unwrap();
    let addr = *acceptor.local_addr()[0].as_socket_addr().unwrap();
    tokio::spawn(Server::new_with_acceptor(acceptor).run(rust_resource_server::app(verifier)));
    let notes = format!("http://{addr}/notes");
    let client = reqwest::Client::new();

    let user = portcullis.register("lin").await;
    let token = portcullis.login("lin").await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = client.get(&notes).bearer_auth(&token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["owner"], user["id"]);

    let response = client.get(&notes).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = client
        .get(&notes)
        .bearer_auth(format!("{token}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer error="invalid_token""#
    );
}
