//! A real headless Chromium driven through `chromedriver` (Debian packages `chromium` and
//! `chromium-driver`) with the `fantoccini` WebDriver client.
//!
//! Include it from a test file with `#[path = "support/browser.rs"] mod browser;`.
//! [`Browser::start`] returns `None` (after a loud message) when the binaries are missing, unless
//! `CI=true`, where a missing browser fails the test. Everything started is killed on drop:
//! chromedriver runs in its own process group, which Chromium's processes inherit.

#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder};
use hyper_util::client::legacy::connect::HttpConnector;

/// Arguments every session gets (quiet, isolated, no network beyond what the test opens).
const CHROMIUM_ARGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
];

/// A running chromedriver + Chromium session.
pub struct Browser {
    client: Option<Client>,
    driver: Child,
    driver_addr: SocketAddr,
    session_id: Option<String>,
    profile: tempfile::TempDir,
}

/// Where [`Browser::screenshot`] writes: `target/screenshots/` of the workspace.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("target")
        .join("screenshots")
}

fn find_binary(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Whether a WebDriver server at `addr` answers `GET /status` with `"ready": true`.
fn driver_ready(addr: &SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = TcpStream::connect_timeout(addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /status HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.1 200") && answer.replace(' ', "").contains("\"ready\":true")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Browser {
    /// Starts chromedriver and a Chromium session with the default arguments.
    pub async fn start() -> Option<Browser> {
        Browser::start_with(&[]).await
    }

    /// Starts chromedriver and a Chromium session with `extra_args` appended to Chromium's
    /// command line (e.g. `--window-size=390,844`). Returns `None` when the browser is not
    /// installed and `CI` is not `true`; panics on any other failure.
    pub async fn start_with(extra_args: &[&str]) -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (
            find_binary(&["chromium", "chromium-browser"]),
            find_binary(&["chromedriver"]),
        ) else {
            let message = "chromium / chromedriver not found: install the Debian packages \
                           `chromium chromium-driver`";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{message}");
            }
            eprintln!("SKIPPING browser test: {message}");
            return None;
        };
        let profile = tempfile::tempdir().expect("profile tempdir");
        let port = free_port().expect("free port");
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let driver_addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut browser = Browser {
            client: None,
            driver,
            driver_addr,
            session_id: None,
            profile,
        };
        browser.wait_for_driver();

        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|a| a.to_string()).collect();
        args.push(format!(
            "--user-data-dir={}",
            browser.profile.path().display()
        ));
        args.extend(extra_args.iter().map(|a| a.to_string()));
        let mut caps = Capabilities::new();
        caps.insert(
            "goog:chromeOptions".to_string(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://{driver_addr}"))
            .await
            .expect("open a WebDriver session");
        browser.session_id = client.session_id().await.expect("session id");
        browser.client = Some(client);
        Some(browser)
    }

    /// Waits until the chromedriver this `Browser` started answers `GET /status` as ready. A
    /// TCP connect alone is not proof: the port was free when picked, and another test's
    /// listener can hold it for a moment, so the answer must be chromedriver's own.
    fn wait_for_driver(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.driver.try_wait() {
                panic!("chromedriver exited early: {status}");
            }
            if driver_ready(&self.driver_addr) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "chromedriver did not answer on {} within 20s",
            self.driver_addr
        );
    }

    /// The WebDriver client.
    pub fn client(&self) -> &Client {
        self.client.as_ref().expect("session open")
    }

    /// Saves a PNG of the viewport to `target/screenshots/<name>.png` and returns its path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client().screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Ends the session cleanly (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take()
            && client.close().await.is_ok()
        {
            self.session_id = None;
        }
    }

    /// A raw `DELETE /session/{id}`: Drop cannot await the async client.
    fn delete_session_blocking(&self, session_id: &str) {
        let Ok(mut stream) =
            TcpStream::connect_timeout(&self.driver_addr, Duration::from_millis(500))
        else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "DELETE /session/{session_id} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.driver_addr
        );
        if stream.write_all(request.as_bytes()).is_ok() {
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink);
        }
    }

    /// Processes started with our profile directory, found through `/proc` (by id, never by name).
    fn profile_processes(&self) -> Vec<u32> {
        let marker = format!("--user-data-dir={}", self.profile.path().display());
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                    cmdline
                        .split(|b| *b == 0)
                        .any(|arg| arg == marker.as_bytes())
                })
            })
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(session_id) = self.session_id.take() {
            self.delete_session_blocking(&session_id);
        }
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        for pid in self.profile_processes() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
        }
    }
}
