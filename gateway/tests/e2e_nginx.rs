//! End-to-end: a real nginx in front, using the gateway's `check` endpoint through
//! `auth_request` (Debian package `nginx`). Skips loudly when nginx is missing, unless `CI=true`.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{Harness, basic, client};

struct Nginx {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nginx_binary() -> Option<&'static str> {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

async fn start_nginx(
    gateway: std::net::SocketAddr,
    upstream: std::net::SocketAddr,
) -> Option<Nginx> {
    let Some(bin) = nginx_binary() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("nginx is not installed (apt-get install -y nginx)");
        }
        eprintln!("!!! SKIPPING: nginx is not installed (apt-get install -y nginx)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    // nginx cannot report an ephemeral port: take one the kernel just handed out.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = dir.path().display();
    let conf = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 64; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location = /_auth/check {{
      internal;
      proxy_pass http://{gateway};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri;
      proxy_set_header X-Forwarded-Method $request_method;
    }}
    location / {{
      auth_request /_auth/check;
      auth_request_set $gw_user $upstream_http_x_remote_user;
      auth_request_set $gw_groups $upstream_http_x_remote_groups;
      proxy_set_header X-Remote-User $gw_user;
      proxy_set_header X-Remote-Groups $gw_groups;
      proxy_pass http://{upstream};
    }}
  }}
}}
"#
    );
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let child = Command::new(bin)
        .arg("-c")
        .arg(&conf_path)
        .arg("-p")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("nginx starts");
    let nginx = Nginx {
        child,
        port,
        _dir: dir,
    };
    for _ in 0..50 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(nginx);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("nginx did not start listening on {port}");
}

#[tokio::test]
async fn nginx_auth_request_uses_check() {
    let yaml = support::BASE_CONFIG.replace(
        "  public_url:",
        "  trusted_proxies: [127.0.0.1/32]\n  public_url:",
    );
    let h = Harness::start_with(&yaml).await;
    let Some(nginx) = start_nginx(h.addr, h.upstream.addr).await else {
        return;
    };
    let url = |p: &str| format!("http://127.0.0.1:{}{p}", nginx.port);
    let c = client();

    let anon = c.get(url("/app/x")).send().await.unwrap();
    assert_eq!(anon.status(), 401);
    assert!(h.upstream.seen().is_empty());

    let ok = c
        .get(url("/app/x?y=1"))
        .header("authorization", basic("alice", "alice-pw"))
        .header("x-remote-user", "admin")
        .header("x-original-uri", "/static/x")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let seen = h.upstream.last().unwrap();
    assert_eq!(seen.path, "/app/x?y=1");
    assert_eq!(seen.all("x-remote-user"), vec!["alice".to_string()]);
    assert_eq!(seen.get("x-remote-groups").as_deref(), Some("staff"));

    // The client's own X-Original-URI does not pick the checked path: nginx sets it.
    h.upstream.clear();
    let forbidden = c
        .get(url("/admin/x"))
        .header("authorization", basic("alice", "alice-pw"))
        .header("x-original-uri", "/static/x")
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let public = c.get(url("/static/app.css")).send().await.unwrap();
    assert_eq!(public.status(), 200);
    assert!(
        h.upstream
            .seen()
            .iter()
            .all(|r| !r.path.starts_with("/admin"))
    );
}
