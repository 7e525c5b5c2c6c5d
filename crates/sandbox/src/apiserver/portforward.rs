//! `pods/{name}/portforward` over WebSocket, as kube-apiserver serves it to
//! kube-rs and kubectl: the `v4.channel.k8s.io` subprotocol, two channels per
//! requested port (data `2i`, error `2i+1`), each opened by a frame carrying
//! the port as two little-endian bytes, every later frame prefixed with its
//! channel byte. One WebSocket is one TCP connection per port.
//!
//! The stand-in runs no pods, so where a port leads is registered by the test
//! (or the sandbox's kubelet) with [`super::KubeApiServer::forward_pod_port`].
//! A port with nothing registered, or whose target refuses, answers on its
//! error channel the way the kubelet does; a pod that does not exist is a 404
//! before the upgrade.
//!
//! Not done: the SPDY transport (`kubectl` before 1.30 and with
//! `KUBECTL_PORT_FORWARD_WEBSOCKETS=false`) and the v5 subprotocol's close
//! signal; kube-rs and current kubectl offer v4.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use super::status::ApiError;

/// The only subprotocol served.
const PROTOCOL: &str = "v4.channel.k8s.io";

/// Where `(namespace, pod, port)` leads on this machine.
pub type Forwards = HashMap<(String, String, u16), SocketAddr>;

/// Answers the upgrade for `pod`'s `ports`, then forwards in the background.
/// `targets` holds, per port, where it leads (or `None`).
pub fn respond(
    headers: &HeaderMap,
    upgrade: Option<OnUpgrade>,
    pod: &str,
    ports: Vec<(u16, Option<SocketAddr>)>,
) -> Result<Response, ApiError> {
    let wants_websocket = headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let offers_v4 = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    let key = headers.get(header::SEC_WEBSOCKET_KEY);
    let (Some(upgrade), Some(key), true, true) = (upgrade, key, wants_websocket, offers_v4) else {
        return Err(ApiError::bad_request(&format!(
            "unable to upgrade connection: port-forward needs a WebSocket upgrade offering {PROTOCOL}"
        )));
    };
    if ports.is_empty() {
        return Err(ApiError::bad_request(
            "at least one port must be specified (query parameter `ports`)",
        ));
    }
    let accept = derive_accept_key(key.as_bytes());
    let pod = pod.to_owned();
    tokio::spawn(async move {
        if let Ok(upgraded) = upgrade.await {
            let socket =
                WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
            forward(socket, &pod, ports).await;
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .header(header::SEC_WEBSOCKET_PROTOCOL, PROTOCOL)
        .body(Body::empty())
        .map_err(|err| ApiError::bad_request(&err.to_string()))
}

/// The `ports` query parameter: comma-separated, possibly repeated.
pub fn parse_ports(raw_query: &str) -> Result<Vec<u16>, ApiError> {
    let mut ports = Vec::new();
    for (key, value) in raw_query.split('&').filter_map(|kv| kv.split_once('=')) {
        if key != "ports" {
            continue;
        }
        for port in value.split("%2C").flat_map(|v| v.split(',')) {
            match port.parse::<u16>() {
                Ok(port) if port > 0 => ports.push(port),
                _ => {
                    return Err(ApiError::bad_request(&format!(
                        "invalid port {port:?}: ports must be between 1 and 65535"
                    )));
                }
            }
        }
    }
    Ok(ports)
}

type Socket = WebSocketStream<TokioIo<hyper::upgrade::Upgraded>>;

async fn forward(socket: Socket, pod: &str, ports: Vec<(u16, Option<SocketAddr>)>) {
    let (mut sink, mut stream) = socket.split();
    let mut connections = Vec::with_capacity(ports.len());
    for (index, (port, target)) in ports.iter().enumerate() {
        let data = channel(index, 0);
        let error = channel(index, 1);
        let opening = port.to_le_bytes();
        for ch in [data, error] {
            if sink
                .send(Message::binary(vec![ch, opening[0], opening[1]]))
                .await
                .is_err()
            {
                return;
            }
        }
        let connected = match target {
            Some(addr) => TcpStream::connect(addr).await.ok(),
            None => None,
        };
        if connected.is_none() {
            // The kubelet's words when nothing listens on the port.
            let message = format!(
                "error forwarding port {port} to pod {pod}: failed to connect to localhost:{port} inside namespace: connection refused"
            );
            let mut frame = vec![error];
            frame.extend_from_slice(message.as_bytes());
            let _ = sink.send(Message::binary(frame)).await;
        }
        connections.push(connected);
    }

    // One reader task per connected port sends its bytes to the socket
    // through this channel; the socket's own frames go to the writers.
    let (to_socket, mut from_ports) = tokio::sync::mpsc::channel::<Vec<u8>>(16);
    let mut writers = Vec::with_capacity(connections.len());
    for (index, connection) in connections.into_iter().enumerate() {
        let Some(connection) = connection else {
            writers.push(None);
            continue;
        };
        let (mut read, write) = connection.into_split();
        writers.push(Some(write));
        let to_socket = to_socket.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match read.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut frame = Vec::with_capacity(n + 1);
                        frame.push(channel(index, 0));
                        frame.extend_from_slice(&buffer[..n]);
                        if to_socket.send(frame).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
    drop(to_socket);

    loop {
        tokio::select! {
            outgoing = from_ports.recv() => match outgoing {
                Some(frame) => {
                    if sink.send(Message::binary(frame)).await.is_err() {
                        break;
                    }
                }
                // Every port's connection is closed: so is the stream.
                None => {
                    let _ = sink.send(Message::Close(None)).await;
                    break;
                }
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Binary(bytes))) if bytes.len() > 1 => {
                    let (ch, payload) = (bytes[0], &bytes[1..]);
                    let index = usize::from(ch / 2);
                    if ch % 2 == 0
                        && let Some(Some(writer)) = writers.get_mut(index)
                        && writer.write_all(payload).await.is_err()
                    {
                        writers[index] = None;
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

/// The channel byte of port `index`'s data (`kind` 0) or error (1) stream.
fn channel(index: usize, kind: u8) -> u8 {
    u8::try_from(index * 2).unwrap_or(u8::MAX - 1) + kind
}
