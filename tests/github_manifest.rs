//! `patchpilot app create` against the fake GitHub's manifest conversion endpoint.

mod support;

use std::os::unix::fs::PermissionsExt as _;

use patchpilot::github::manifest::{AppCreateArgs, serve_app_create};
use support::fake_github::{FakeGitHub, PRIVATE_KEY_PEM, TEST_APP_ID};

#[tokio::test]
async fn manifest_flow_writes_a_private_env_file_and_key() {
    let fake = FakeGitHub::start().await;
    fake.add_manifest_code("abc123");
    let dir = tempfile::tempdir().unwrap();
    let env_file = dir.path().join(".env");
    let args = AppCreateArgs {
        org: Some("acme".into()),
        public_url: "https://pp.example.com".into(),
        name: "PatchPilot".into(),
        github_web_url: fake.url.clone(),
        github_api_url: fake.url.clone(),
        listen: "127.0.0.1:0".parse().unwrap(),
        env_file: env_file.clone(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let local = format!("http://{}", listener.local_addr().unwrap());
    let flow = tokio::spawn(serve_app_create(listener, args));

    // The browser opens the helper page: a form posting the manifest to the org's settings.
    let page = reqwest::get(&local).await.unwrap().text().await.unwrap();
    let action_prefix = format!(
        "action=\"{}/organizations/acme/settings/apps/new?state=",
        fake.url
    );
    let state = page
        .split(&action_prefix)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    assert!(page.contains("name=\"manifest\""));
    assert!(page.contains("https://pp.example.com/webhooks/github"));

    // A callback with the wrong state is refused; GitHub's redirect with the right one finishes.
    let forged = reqwest::get(format!("{local}/callback?code=abc123&state=wrong"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(forged.contains("does not belong"));
    let done = reqwest::get(format!("{local}/callback?code=abc123&state={state}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(done.contains("Registered patchpilot"));
    let created = flow.await.unwrap().unwrap();

    assert_eq!(created.app_id, TEST_APP_ID);
    let env = std::fs::read_to_string(&env_file).unwrap();
    let key_path = dir.path().join("patchpilot.private-key.pem");
    assert_eq!(
        env,
        format!(
            "GITHUB_API_URL={}\nGITHUB_APP_ID={TEST_APP_ID}\nGITHUB_PRIVATE_KEY_PATH={}\nGITHUB_WEBHOOK_SECRET=fake-webhook-secret\n",
            fake.url,
            key_path.display()
        )
    );
    assert_eq!(
        std::fs::metadata(&env_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&key_path).unwrap(), PRIVATE_KEY_PEM);
    assert_eq!(
        std::fs::metadata(&key_path).unwrap().permissions().mode() & 0o777,
        0o600
    );
    fake.finish();
}
