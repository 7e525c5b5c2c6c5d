//! Port-forwarding into a pod through the API server, with kube's own
//! `Api::portforward`, as `hubwright demo --cluster` reaches a hub that has no
//! external address.
//!
//! Against the stand-in, the test says where the pod's port leads (a small
//! HTTP server here, answering as the real pod's `agnhost netexec` does);
//! with `KUBECONFIG` set, a real `agnhost` pod answers (the tests skip, and
//! say so, when no node is Ready).

use std::time::{Duration, Instant};

use hubwright_sandbox::apiserver::TestCluster;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const PORT: u16 = 8080;

/// A namespace with the pod `echo` whose port [`PORT`] answers
/// `GET /echo?msg=M` with `M`.
async fn echo_pod(cluster: &TestCluster) -> (kube::Client, String) {
    let client = cluster.client().await.unwrap();
    let ns = cluster.unique_name("hw-test");
    cluster.delete_on_drop(&ns);
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({ "metadata": { "name": ns } })).unwrap(),
        )
        .await
        .unwrap();
    let pod: Pod = serde_json::from_value(json!({
        "metadata": { "name": "echo", "labels": { "app": "echo" } },
        "spec": { "containers": [{
            "name": "echo",
            "image": "registry.k8s.io/e2e-test-images/agnhost:2.53",
            "args": ["netexec", format!("--http-port={PORT}")],
            "ports": [{ "containerPort": PORT }],
        }]},
    }))
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    pods.create(&PostParams::default(), &pod).await.unwrap();
    match cluster.standin() {
        Some(server) => {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            server.forward_pod_port(&ns, "echo", PORT, listener.local_addr().unwrap());
            tokio::spawn(serve_echo(listener));
        }
        None => wait_ready(&pods, "echo").await,
    }
    (client, ns)
}

async fn wait_ready(pods: &Api<Pod>, name: &str) {
    let started = Instant::now();
    loop {
        let pod = pods.get(name).await.unwrap();
        let ready = pod
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True");
        if ready {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "pod {name} not ready in 5 minutes"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Answers each connection's one request with its `msg` query parameter.
async fn serve_echo(listener: TcpListener) {
    while let Ok((mut stream, _)) = listener.accept().await {
        tokio::spawn(async move {
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request);
            let msg = text
                .split_once("msg=")
                .and_then(|(_, rest)| rest.split([' ', '&']).next())
                .unwrap_or_default()
                .to_owned();
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        });
    }
}

async fn cleanup(client: &kube::Client, ns: &str) {
    let _ = Api::<Namespace>::all(client.clone())
        .delete(ns, &DeleteParams::default())
        .await;
}

#[tokio::test]
async fn a_port_forward_carries_a_request_and_its_answer() {
    let cluster = TestCluster::from_env().await.unwrap();
    if cluster.skips_without_ready_node().await {
        return;
    }
    let (client, ns) = echo_pod(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    for msg in ["first", "second"] {
        // One stream is one connection, as with kubectl port-forward.
        let mut forwarder = pods.portforward("echo", &[PORT]).await.unwrap();
        let mut stream = forwarder.take_stream(PORT).unwrap();
        let request =
            format!("GET /echo?msg={msg} HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(30), stream.read_to_string(&mut answer))
            .await
            .expect("the answer within 30 s")
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with(msg), "{answer}");
        // The server closes the socket once the pod's side is done; kube's
        // join then reports sending its own close too late, which is no
        // failure of the forward.
        drop(stream);
        drop(forwarder);
    }
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_port_nothing_listens_on_answers_on_the_error_channel() {
    let cluster = TestCluster::from_env().await.unwrap();
    if cluster.skips_without_ready_node().await {
        return;
    }
    let (client, ns) = echo_pod(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    let mut forwarder = pods.portforward("echo", &[9999]).await.unwrap();
    let error = forwarder.take_error(9999).unwrap();
    let mut stream = forwarder.take_stream(9999).unwrap();
    // The kubelet dials when data arrives; the stand-in at once.
    let _ = stream.write_all(b"GET / HTTP/1.1\r\n\r\n").await;
    let error = tokio::time::timeout(Duration::from_secs(30), error)
        .await
        .expect("an error within 30 s")
        .expect("an error message, not a closed channel");
    assert!(
        error.contains("error forwarding port 9999 to pod"),
        "{error}"
    );
    cleanup(&client, &ns).await;
}

#[tokio::test]
async fn a_pod_that_does_not_exist_is_not_found() {
    let cluster = TestCluster::from_env().await.unwrap();
    if cluster.skips_without_ready_node().await {
        return;
    }
    let (client, ns) = echo_pod(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    match pods.portforward("nobody", &[PORT]).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 404, "{status:?}"),
        Err(other) => panic!("expected 404, got {other}"),
        Ok(_) => panic!("expected 404, got a stream"),
    }
    cleanup(&client, &ns).await;
}
