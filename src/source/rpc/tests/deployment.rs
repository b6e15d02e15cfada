//! `deployment_block` against a JSON-RPC server that answers `eth_getCode` by height, as a
//! node with historical state does (or, below a height, refuses, as a pruned node does).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// A chain whose `TOKEN` has code from block `deployed` (never, if `None`) up to `head`;
/// heights below `pruned_below` are refused. Counts the requests it answers.
struct Node {
    head: u64,
    deployed: Option<u64>,
    pruned_below: u64,
    requests: AtomicUsize,
}

impl Node {
    fn answer(&self, request: &serde_json::Value) -> serde_json::Value {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let params = &request["params"];
        match request["method"].as_str() {
            Some("eth_blockNumber") => json!({ "result": format!("{:#x}", self.head) }),
            Some("eth_getCode") => {
                let at = params[1].as_str().unwrap_or("latest");
                let at = u64::from_str_radix(at.trim_start_matches("0x"), 16).unwrap_or(self.head);
                if at < self.pruned_below {
                    return json!({ "error": { "code": -32000, "message": "missing trie node" } });
                }
                let deployed = params[0].as_str() == Some(&TOKEN.to_string().to_lowercase())
                    && self.deployed.is_some_and(|d| d <= at);
                json!({ "result": if deployed { "0x6001" } else { "0x" } })
            }
            other => panic!("unexpected request {other:?}"),
        }
    }
}

/// Serves `node` over HTTP on a free port, one request per connection.
async fn serve(node: Arc<Node>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let node = node.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let body = loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let length = head
                            .lines()
                            .find_map(|l| {
                                l.to_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        if body.len() >= length {
                            break body.to_owned();
                        }
                    }
                    if n == 0 {
                        return;
                    }
                };
                let request: serde_json::Value = serde_json::from_str(&body).unwrap();
                let mut answer = node.answer(&request);
                answer["jsonrpc"] = json!("2.0");
                answer["id"] = request["id"].clone();
                let body = answer.to_string();
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

async fn deployment(node: Node) -> (Result<Option<u64>, SourceError>, usize) {
    let node = Arc::new(node);
    let url = serve(node.clone()).await;
    let source = RpcBlockSource::http(&url, config()).unwrap();
    let found = source.deployment_block(TOKEN).await;
    (found, node.requests.load(Ordering::Relaxed))
}

fn node(head: u64, deployed: Option<u64>) -> Node {
    Node {
        head,
        deployed,
        pruned_below: 0,
        requests: AtomicUsize::new(0),
    }
}

#[tokio::test]
async fn the_deployment_block_is_found_by_bisection() {
    for (head, deployed) in [(1_000, 37), (1_000, 0), (1_000, 1_000), (1, 1), (0, 0)] {
        let (found, requests) = deployment(node(head, Some(deployed))).await;
        assert_eq!(
            found.unwrap(),
            Some(deployed),
            "head {head}, deployed {deployed}"
        );
        // eth_blockNumber, the head's code, one call per halving of 0..=head.
        let halvings = (head + 1).next_power_of_two().trailing_zeros() as usize;
        assert!(
            requests <= 2 + halvings,
            "{requests} requests for head {head}"
        );
    }
}

#[tokio::test]
async fn no_code_at_the_head_is_no_contract() {
    let (found, requests) = deployment(node(1_000, None)).await;
    assert_eq!(found.unwrap(), None);
    assert_eq!(requests, 2, "eth_blockNumber and the head's code only");
}

#[tokio::test]
async fn a_pruned_node_is_a_transport_error_naming_the_height() {
    let mut pruned = node(1_000, Some(37));
    pruned.pruned_below = 900;
    let (found, _) = deployment(pruned).await;
    let err = found.unwrap_err();
    assert!(matches!(err, SourceError::Transport { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("eth_getCode") && text.contains(&TOKEN.to_string()),
        "{text}"
    );
}
