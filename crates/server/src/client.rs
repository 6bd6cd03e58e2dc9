//! A small blocking HTTP/1.1 client over one kept-alive connection, for the simulator and
//! scripts that drive a running `warmstart serve` (JSON in, JSON out).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use warmstart_app::experiment::ExperimentReport;
use warmstart_app::feedback::{EventsRequest, EventsResponse};
use warmstart_app::request::{RecommendRequest, RecommendResponse};
use warmstart_app::simulate::Endpoint;

/// A client of one server (`http://host:port`).
pub struct HttpClient {
    addr: String,
    conn: Option<BufReader<TcpStream>>,
}

fn fail(what: impl Into<String>) -> warmstart_app::Error {
    warmstart_app::Error::Io { path: "http".into(), source: std::io::Error::other(what.into()) }
}

impl HttpClient {
    /// A client of `url` (`http://host:port`, no TLS).
    pub fn new(url: &str) -> warmstart_app::Result<HttpClient> {
        let addr = url.strip_prefix("http://").unwrap_or(url).trim_end_matches('/').to_string();
        if addr.is_empty() || addr.contains('/') {
            return Err(warmstart_app::Error::bad("server", format!("`{url}`: expected http://host:port")));
        }
        Ok(HttpClient { addr, conn: None })
    }

    fn connect(&mut self) -> std::io::Result<&mut BufReader<TcpStream>> {
        if self.conn.is_none() {
            let s = TcpStream::connect(&self.addr)?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(Duration::from_secs(60)))?;
            self.conn = Some(BufReader::new(s));
        }
        Ok(self.conn.as_mut().expect("connected"))
    }

    /// Sends a request; returns the status and body. Reconnects once if the kept-alive
    /// connection was closed.
    pub fn request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> warmstart_app::Result<(u16, Vec<u8>)> {
        for attempt in 0..2 {
            match self.try_request(method, path, body) {
                Ok(r) => return Ok(r),
                Err(e) => {
                    self.conn = None;
                    if attempt == 1 {
                        return Err(fail(format!("{method} {path} on {}: {e}", self.addr)));
                    }
                }
            }
        }
        unreachable!("two attempts")
    }

    fn try_request(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> std::io::Result<(u16, Vec<u8>)> {
        let host = self.addr.clone();
        let conn = self.connect()?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
        if let Some(b) = body {
            head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", b.len()));
        }
        head.push_str("\r\n");
        let s = conn.get_mut();
        s.write_all(head.as_bytes())?;
        if let Some(b) = body {
            s.write_all(b)?;
        }
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line `{}`", line.trim())))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse::<usize>().ok();
                } else if k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
        }
        let mut out = Vec::new();
        if chunked {
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let n = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| std::io::Error::other("bad chunk size"))?;
                let mut chunk = vec![0u8; n + 2];
                conn.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&chunk[..n]);
            }
        } else {
            let n = length.ok_or_else(|| std::io::Error::other("response without a length"))?;
            out.resize(n, 0);
            conn.read_exact(&mut out)?;
        }
        Ok((status, out))
    }

    /// A JSON request whose 200 answer is decoded; any other status is an error carrying
    /// the server's message.
    pub fn json<T: DeserializeOwned>(
        &mut self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> warmstart_app::Result<T> {
        let bytes = body.map(|b| serde_json::to_vec(b)).transpose().map_err(|e| fail(e.to_string()))?;
        let (status, out) = self.request(method, path, bytes.as_deref())?;
        if status != 200 {
            return Err(fail(format!("{method} {path}: HTTP {status}: {}", String::from_utf8_lossy(&out))));
        }
        serde_json::from_slice(&out).map_err(|e| fail(format!("{method} {path}: {e}")))
    }
}

impl Endpoint for HttpClient {
    fn recommend(&mut self, req: &RecommendRequest) -> warmstart_app::Result<RecommendResponse> {
        self.json("POST", "/v1/recommend", Some(req))
    }
    fn events(&mut self, req: &EventsRequest) -> warmstart_app::Result<EventsResponse> {
        self.json("POST", "/v1/events", Some(req))
    }
    fn report(&mut self, key: &str) -> warmstart_app::Result<ExperimentReport> {
        self.json("GET", &format!("/v1/experiments/{key}/report"), None::<&()>)
    }
}
