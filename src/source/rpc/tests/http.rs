//! Alloy's retry layer under our policy, over a real (scripted) HTTP server.

use std::time::Duration;

use super::*;

/// A one-connection-per-request HTTP server: answers request `i` according to `plan[i]`
/// (`429`: HTTP 429, `stall`: never answers, anything else: a JSON-RPC result).
async fn flaky_server(plan: Vec<&'static str>) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for step in plan.into_iter().chain(std::iter::repeat("ok")) {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut len = 0;
                // Read headers and the (small) body.
                loop {
                    let n = socket.read(&mut buf[len..]).await.unwrap_or(0);
                    len += n;
                    let text = String::from_utf8_lossy(&buf[..len]);
                    if n == 0 || (text.contains("\r\n\r\n") && text.trim_end().ends_with('}')) {
                        break;
                    }
                }
                let text = String::from_utf8_lossy(&buf[..len]).to_string();
                let id = text
                    .split("\"id\":")
                    .nth(1)
                    .and_then(|s| s.split([',', '}']).next())
                    .unwrap_or("0")
                    .to_string();
                let response = match step {
                    "429" => "HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".to_string(),
                    "stall" => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    _ => {
                        let body = format!("{{\"jsonrpc\":\"2.0\",\"id\":{id},\"result\":\"0x2a\"}}");
                        format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
                let _ = socket.write_all(response.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    url
}

#[tokio::test]
async fn http_429_and_timeouts_are_retried_over_real_http() {
    let url = flaky_server(vec!["429", "stall", "429"]).await;
    let mut c = config();
    // Retries to spare and a timeout a busy machine's loopback answer stays under: the two
    // 429s and the stall need three retries.
    c.transport = TransportConfig {
        max_retries: 8,
        backoff: Duration::from_millis(5),
        compute_units_per_second: u64::MAX,
        timeout: Duration::from_secs(2),
    };
    let s = RpcBlockSource::http(&url, c).unwrap();
    assert_eq!(s.head().await.unwrap(), 42);
}

#[tokio::test]
async fn retries_give_up_with_a_transport_error_naming_the_endpoint() {
    let url = flaky_server(vec!["429"; 10]).await;
    let mut c = config();
    c.transport.max_retries = 1;
    let s = RpcBlockSource::http(&url, c).unwrap();
    let err = s.head().await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Transport { operation, .. }
            if operation.starts_with("eth_blockNumber at endpoint #0 (http://127.0.0.1:")),
        "{err}"
    );
}
