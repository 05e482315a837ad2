//! The demo upstream (`upstream: {demo: true}`) shows what the legacy app receives.

use std::time::Duration;

use gateway::__test::demo_upstream;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

#[tokio::test]
async fn page_shows_identity_escaped_and_decoded() {
    let (addr, server) = demo_upstream::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("spawn");
    let response = client()
        .get(format!("http://{addr}/app/reports?year=2026&x=<i>"))
        .header("X-Remote-User", "alice")
        .header("X-Remote-Name", "Al%C3%AFce%20%3Cb%3ESmith%3C%2Fb%3E")
        .header("X-Remote-Groups", "admins,staff")
        .header("X-Remote-Backend", "local")
        .header("X-Remote-Department", "R&D")
        .header("X-Forwarded-For", "203.0.113.9")
        .header("X-Forwarded-Proto", "https")
        .header("X-Custom", "<script>alert(1)</script>")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let html = response.text().await.expect("body");
    assert!(
        html.contains("<h1 id=\"greeting\">Hello, alice!</h1>"),
        "{html}"
    );
    assert!(
        html.contains("<code>Alïce &lt;b&gt;Smith&lt;/b&gt;</code>"),
        "{html}"
    );
    assert!(html.contains("<code>admins,staff</code>"));
    assert!(html.contains("<code>local</code>"));
    assert!(html.contains("<td data-header=\"x-remote-email\"><span class=\"none\">not sent"));
    assert!(html.contains("Extra <code>x-remote-department</code>"));
    assert!(html.contains("<code>R&amp;D</code>"));
    assert!(html.contains("<code>203.0.113.9</code>"));
    assert!(html.contains("<details><summary>All other headers"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        !html.contains("<script>"),
        "nothing from a request is raw HTML"
    );
    assert!(html.contains("GET /app/reports?year=2026&amp;x=%3Ci%3E"));
    assert!(
        html.contains("href=\"/_auth/logout\""),
        "logout goes to the confirm page"
    );
    server.abort();
}

#[tokio::test]
async fn page_without_identity_says_so() {
    let (addr, server) =
        demo_upstream::spawn_with_prefix("127.0.0.1:0".parse().expect("addr"), "/auth/")
            .await
            .expect("spawn");
    let html = client()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .expect("request")
        .text()
        .await
        .expect("body");
    assert!(html.contains("No user: this request reached the app without identity headers."));
    assert!(html.contains("No forwarding headers."));
    assert!(html.contains("href=\"/auth/logout\""));
    server.abort();
}

#[tokio::test]
async fn whoami_echoes_identity_as_json() {
    let (addr, server) = demo_upstream::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("spawn");
    let response = client()
        .get(format!("http://{addr}/api/whoami"))
        .header("X-Remote-User", "bob")
        .header("X-Remote-Email", "bob@example.org")
        .header("X-Remote-Groups", "dev, ops,")
        .header("X-Remote-Team", "platform")
        .header("X-Forwarded-Host", "app.example.org")
        .send()
        .await
        .expect("request");
    assert_eq!(response.headers()["content-type"], "application/json");
    let json: serde_json::Value = response.json().await.expect("json");
    assert_eq!(
        json,
        serde_json::json!({
            "user": "bob",
            "email": "bob@example.org",
            "name": null,
            "groups": ["dev", "ops"],
            "backend": null,
            "extra": {"x-remote-team": "platform"},
            "forwarded": {"x-forwarded-host": "app.example.org"},
        })
    );
    server.abort();
}

#[tokio::test]
async fn static_content_and_refusals() {
    let (addr, server) = demo_upstream::spawn("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("spawn");
    let client = client();
    let hello = client
        .get(format!("http://{addr}/static/hello.txt"))
        .send()
        .await
        .expect("request");
    assert_eq!(hello.status(), 200);
    assert!(
        hello
            .text()
            .await
            .expect("body")
            .contains("no login needed")
    );
    let css = client
        .get(format!("http://{addr}/static/app.css"))
        .send()
        .await
        .expect("request");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
    let missing = client
        .get(format!("http://{addr}/static/secret.txt"))
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), 404);
    let delete = client
        .delete(format!("http://{addr}/"))
        .send()
        .await
        .expect("request");
    assert_eq!(delete.status(), 405);

    server.abort();
    let _ = server.await;
    let after = client.get(format!("http://{addr}/")).send().await;
    assert!(after.is_err(), "aborting the task stops the server");
}
