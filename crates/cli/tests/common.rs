//! Helpers shared by the CLI integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The shared data directory: `$WARMSTART_DATA`, else `../shared/data` beside the checkout.
pub fn data_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("WARMSTART_DATA") {
        return PathBuf::from(d);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data")
}

/// The `warmstart` binary with a store in `dir`.
pub fn warmstart(store: &Path) -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("warmstart").unwrap();
    c.arg("--store").arg(store);
    c
}

/// `warmstart stats --json` as a value.
pub fn stats(store: &Path) -> serde_json::Value {
    let out = warmstart(store).args(["stats", "--json"]).output().unwrap();
    assert!(out.status.success(), "stats failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Per-site entry of stats.
pub fn site<'a>(st: &'a serde_json::Value, key: &str) -> &'a serde_json::Value {
    st["sites"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no site {key}"))
}

/// A response of [`http`].
pub struct Response {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or_default();
    if !body.is_empty() || method != "GET" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        if !headers.iter().any(|h| h.0.eq_ignore_ascii_case("content-type")) {
            req.push_str("Content-Type: application/json\r\n");
        }
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: HashMap<String, String> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))).collect();
    let mut body = raw[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|t| t == "chunked") {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let n = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap().trim(), 16).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + n]);
            rest = &rest[eol + 4 + n..];
        }
        body = out;
    }
    Response { status, headers, body }
}

pub fn post(addr: &str, path: &str, body: &Value) -> Response {
    http(addr, "POST", path, &[], Some(body.to_string().as_bytes()))
}

/// A subset of the Amazon Art/Office data: every product, the first users' sequences.
pub fn subset(dir: &Path) -> PathBuf {
    let src = data_dir().join("amazon-art-office");
    let out = dir.join("amazon-art-office");
    std::fs::create_dir_all(&out).unwrap();
    for (file, lines) in [
        ("items_art.csv", usize::MAX),
        ("items_office.csv", usize::MAX),
        ("users.txt", usize::MAX),
        ("train.txt", 4000),
        ("valid.txt", 300),
        ("test.txt", 600),
    ] {
        let text = std::fs::read_to_string(src.join(file)).unwrap();
        let kept: String = text.lines().take(lines).map(|l| format!("{l}\n")).collect();
        std::fs::write(out.join(file), kept).unwrap();
    }
    out
}

/// A running server, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// Where its stderr goes; printed when a test fails while it runs.
    pub log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- server log {} (last lines) ---", self.log.display());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// Starts `warmstart serve` on an ephemeral port with `args` (and `envs`), waits until it
/// listens; its stderr goes to `dir/server.log`.
pub fn serve(store: &Path, dir: &Path, envs: &[(&str, &Path)], args: &[&str]) -> Server {
    let ready = dir.join(format!("ready-{}", std::process::id()));
    let _ = std::fs::remove_file(&ready);
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("warmstart"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let child = cmd
        .env("WARMSTART_HOME", dir.join("home"))
        .arg("--store")
        .arg(store)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        .arg("--ready-file")
        .arg(&ready)
        .stderr(std::fs::File::create(dir.join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let mut server = Server { child, addr: String::new(), log: dir.join("server.log") };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(300) {
        if let Ok(a) = std::fs::read_to_string(&ready) {
            if !a.is_empty() {
                server.addr = a;
                return server;
            }
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("server exited ({status}): {}", std::fs::read_to_string(dir.join("server.log")).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("server not ready: {}", std::fs::read_to_string(dir.join("server.log")).unwrap_or_default());
}

/// The impression event of every item of a recommendation response, in order.
pub fn impression(key: &str, session: &str, rec: &Value) -> Value {
    let items: Vec<Value> = rec["items"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(p, i)| serde_json::json!({"id": i["id"], "position": p}))
        .collect();
    serde_json::json!({"type": "impression", "key": key, "session": session,
        "recommendation_id": rec["recommendation_id"], "items": items})
}
