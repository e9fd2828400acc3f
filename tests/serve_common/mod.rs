//! Helpers of the `relprop serve` tests: a server on a free loopback port, and a small
//! HTTP/1.1 client (one request per connection) that reports what came back.
#![allow(dead_code)] // each test file uses its own subset

pub mod cdp;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long any one request may take before the test fails (a hang is a failure).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `relprop serve`, stopped when dropped.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl Server {
    /// Starts `relprop serve --port 0 ARGS` and waits for the address it prints.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relprop"))
            .args(["serve", "--port", "0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start relprop serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("http://").nth(1) {
                    let _ = tx.send(rest.split('/').next().unwrap_or("").to_string());
                }
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("relprop serve printed no address");
            }
        };
        Server {
            child,
            addr: addr.parse().expect("a socket address"),
        }
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends one request with `Connection: close` and reads the whole answer: status and
/// body. `extra` is added to the head as is (e.g. a declared length with no body).
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &str,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut s = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    s.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    s.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let length = if extra.to_ascii_lowercase().contains("content-length") {
        String::new()
    } else {
        format!("Content-Length: {}\r\n", body.len())
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\n{length}{extra}\r\n"
    );
    s.write_all(head.as_bytes())?;
    // A server may answer (413) and close before a too-large body is sent in full: the
    // answer is read all the same.
    let sent = s.write_all(body);
    let mut answer = Vec::new();
    let read = s.read_to_end(&mut answer);
    match (parse_answer(&answer), sent, read) {
        (Ok(parsed), _, _) => Ok(parsed),
        (Err(_), Err(e), _) | (Err(_), Ok(()), Err(e)) => Err(e),
        (Err(e), Ok(()), Ok(_)) => Err(e),
    }
}

/// Status and body of a raw HTTP/1.1 answer (bodies with a length, as the server sends).
pub fn parse_answer(answer: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let head = std::str::from_utf8(&answer[..split]).map_err(|_| bad("head not UTF-8"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    Ok((status, answer[split + 4..].to_vec()))
}

/// POSTs `body` as JSON to `path`; the status and the answer's JSON.
pub fn post_json(
    addr: SocketAddr,
    path: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let (status, bytes) =
        request(addr, "POST", path, "", body.to_string().as_bytes()).expect("request");
    (
        status,
        serde_json::from_slice(&bytes).expect("a JSON answer"),
    )
}

/// GETs `path`; the status and the answer's JSON.
pub fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, bytes) = request(addr, "GET", path, "", b"").expect("request");
    (
        status,
        serde_json::from_slice(&bytes).expect("a JSON answer"),
    )
}

/// A JSON array of numbers as f32 (the API writes f32 values in their shortest form).
pub fn floats(v: &serde_json::Value) -> Vec<f32> {
    v.as_array()
        .expect("an array")
        .iter()
        .map(|x| x.as_f64().expect("a number") as f32)
        .collect()
}
