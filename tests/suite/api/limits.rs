//! The API's transport limits, against a real `hubwright serve --api`
//! process over raw TCP: a half-sent request head is cut off after the header
//! read timeout, a body that stops short is answered 408 after the body read
//! timeout, an oversized head is refused, and past the connection cap a
//! connection is not served until another closes.

use std::path::Path;
use std::time::{Duration, Instant};

use hubwright_state::model::Role;
use hubwright_testkit::process::Process;
use hubwright_testkit::server::{ApiServer, token};
use hubwright_testkit::{TestDatabase, scratch_dir, wait};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::BIN;

/// Longest any awaited close or answer may take; the limits under test are
/// a second or two.
const WITHIN: Duration = Duration::from_secs(20);

async fn connect(url: &str) -> TcpStream {
    let address = url.strip_prefix("http://").expect("an http URL");
    TcpStream::connect(address).await.expect("connect")
}

/// Reads until the server closes the connection (or resets it), within
/// [`WITHIN`]; returns what it sent.
async fn read_until_closed(socket: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(WITHIN, async {
        let mut buf = [0u8; 4096];
        loop {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server did not close the connection within {WITHIN:?}"
    );
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads until a whole response head has arrived (or the connection ends).
async fn read_head(socket: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn a_half_sent_request_head_is_cut_off_after_the_header_read_timeout() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start_process(
        BIN,
        &db,
        &scratch_dir("no-workflows"),
        &["--header-read-timeout", "1s"],
    )
    .await;
    let mut socket = connect(&server.url).await;
    let started = Instant::now();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hubwright\r\nX-Slow: ")
        .await
        .unwrap();

    let answer = read_until_closed(&mut socket).await;
    let took = started.elapsed();
    assert_eq!(answer, "", "nothing is answered to half a head");
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "closed after {took:?}, the timeout is 1s"
    );
    // A whole request on a new connection is still served.
    let mut socket = connect(&server.url).await;
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hubwright\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut socket)
            .await
            .starts_with("HTTP/1.1 200")
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_body_that_stops_short_is_answered_408_after_the_body_read_timeout() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start_process(
        BIN,
        &db,
        &scratch_dir("no-workflows"),
        &["--body-read-timeout", "1s"],
    )
    .await;
    let alice = token(&db.store, "alice", Role::Developer).await;
    let mut socket = connect(&server.url).await;
    let started = Instant::now();
    let head = format!(
        "POST /v1/environments HTTP/1.1\r\nHost: hubwright\r\nAuthorization: Bearer {alice}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"na"
    );
    socket.write_all(head.as_bytes()).await.unwrap();

    let answer = read_until_closed(&mut socket).await;
    let took = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        took >= Duration::from_millis(900),
        "answered after {took:?}, the timeout is 1s"
    );
    let (_, body) = answer.split_once("\r\n\r\n").expect("a head and a body");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("content-type: application/problem+json")
    );
    let problem: Value = serde_json::from_str(body).expect("a problem document");
    assert_eq!(problem["type"], "/docs/problems/request-timeout");
    assert_eq!(
        problem["detail"],
        "the request body did not arrive within 1s"
    );
    drop(server);
    db.drop_now().await;
}

#[tokio::test]
async fn a_request_head_over_the_size_limit_is_refused() {
    let db = TestDatabase::create().await;
    let server = ApiServer::start_process(BIN, &db, &scratch_dir("no-workflows"), &[]).await;
    let request = |size: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: hubwright\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        )
    };

    // 16 KiB of header is within the default 32 KiB.
    let mut socket = connect(&server.url).await;
    socket
        .write_all(request(16 * 1024).as_bytes())
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut socket)
            .await
            .starts_with("HTTP/1.1 200")
    );

    let mut socket = connect(&server.url).await;
    // The server may stop reading (and close) before the whole head is written.
    let _ = socket.write_all(request(64 * 1024).as_bytes()).await;
    let answer = read_until_closed(&mut socket).await;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431"),
        "a 64 KiB header is refused: {answer}"
    );
    drop(server);
    db.drop_now().await;
}

/// `serve --api` as a bare process (no client of the testkit's holds a
/// connection to it), and its address from the log.
async fn bare_server(db: &TestDatabase, extra: &[&str]) -> (Process, String) {
    let workflows = scratch_dir("no-workflows").display().to_string();
    let mut args = vec![
        "serve",
        "--api",
        "--listen",
        "127.0.0.1:0",
        "--workflows",
        &workflows,
    ];
    args.extend_from_slice(extra);
    let log = scratch_dir("serve-bare").join("serve.log");
    let process = Process::start(Path::new(BIN), &db.url, &args, &log);
    let address = wait::until_some("the api listening line", WITHIN, || {
        let log = process.log_text();
        async move {
            log.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .find(|line| line["message"] == "api listening")
                .and_then(|line| line["address"].as_str().map(str::to_owned))
        }
    })
    .await;
    (process, format!("http://{address}"))
}

#[tokio::test]
async fn past_the_connection_cap_a_connection_waits_until_another_closes() {
    let db = TestDatabase::create().await;
    let (_process, url) = bare_server(
        &db,
        &["--max-connections", "2", "--header-read-timeout", "60s"],
    )
    .await;
    let keep_alive = b"GET /healthz HTTP/1.1\r\nHost: hubwright\r\n\r\n";
    // Two kept-alive connections, each served once, hold both places.
    let mut first = connect(&url).await;
    first.write_all(keep_alive).await.unwrap();
    assert!(read_head(&mut first).await.starts_with("HTTP/1.1 200"));
    let mut second = connect(&url).await;
    second.write_all(keep_alive).await.unwrap();
    assert!(read_head(&mut second).await.starts_with("HTTP/1.1 200"));

    // A third connects (the kernel's backlog takes it) but is not served…
    let mut third = connect(&url).await;
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: hubwright\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(800), third.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "the third connection was served while two were open"
    );

    // …until one of the two closes.
    drop(first);
    let answer = read_until_closed(&mut third).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    drop(second);
    db.drop_now().await;
}
