//! Node-fault tests against alloy's mock transport: scripted answers, no node.

use std::time::Duration;

use alloy_primitives::{Address, B256, Bloom, BloomInput, U256};
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_sol_types::SolEvent;
use alloy_transport::mock::{Asserter, MockTransport};
use serde_json::json;

use super::*;
use crate::decode::{Contract, Transfer};

const TOKEN: Address = Address::repeat_byte(0xA1);

fn config() -> RpcConfig {
    let mut c = RpcConfig::new(Decoders::new().with(TOKEN, Contract::Token { asset: TOKEN }));
    c.retry = RetryConfig {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        timeout: Duration::from_secs(5),
    };
    c
}

fn source(asserter: &Asserter) -> RpcBlockSource {
    let c = config();
    let client: RpcClient = ClientBuilder::default()
        .layer(RetryLayer::new(c.retry))
        .transport(MockTransport::new(asserter.clone()), true);
    RpcBlockSource::new(client, c)
}

fn header(number: u64, bloom: Bloom) -> serde_json::Value {
    json!({
        "hash": B256::repeat_byte(number as u8),
        "number": format!("{number:#x}"),
        "parentHash": B256::repeat_byte(number as u8 - 1),
        "timestamp": "0x10",
        "logsBloom": bloom,
        "transactions": [],
    })
}

fn transfer_log(number: u64, index: u64) -> serde_json::Value {
    let data = Transfer {
        from: Address::repeat_byte(1),
        to: Address::repeat_byte(2),
        value: U256::from(7),
    }
    .encode_log_data();
    json!({
        "address": TOKEN,
        "topics": data.topics(),
        "data": data.data,
        "blockHash": B256::repeat_byte(number as u8),
        "blockNumber": format!("{number:#x}"),
        "transactionHash": B256::repeat_byte(0xCC),
        "logIndex": format!("{index:#x}"),
        "removed": false,
    })
}

fn token_bloom() -> Bloom {
    let mut bloom = Bloom::default();
    bloom.accrue(BloomInput::Raw(TOKEN.as_slice()));
    bloom
}

#[tokio::test]
async fn incomplete_get_logs_is_refetched_not_stored() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, token_bloom()));
    asserter.push_success(&json!([])); // the node "forgot" the log
    asserter.push_success(&json!([transfer_log(5, 0)]));
    let block = source(&asserter).block_by_number(5).await.unwrap().unwrap();
    assert_eq!(block.events.len(), 1);
    assert!(asserter.read_q().is_empty());
}

#[tokio::test]
async fn bloom_false_positive_is_accepted_after_refetches() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, token_bloom()));
    for _ in 0..3 {
        asserter.push_success(&json!([]));
    }
    let block = source(&asserter).block_by_number(5).await.unwrap().unwrap();
    assert!(block.events.is_empty());
}

#[tokio::test]
async fn rate_limits_are_retried_by_the_layer() {
    let asserter = Asserter::new();
    asserter.push_failure(alloy_json_rpc::ErrorPayload {
        code: 429,
        message: "Too Many Requests".into(),
        data: None,
    });
    asserter.push_success(&"0x2a");
    assert_eq!(source(&asserter).head().await.unwrap(), 42);
}

#[tokio::test]
async fn too_many_results_halves_the_range() {
    let asserter = Asserter::new();
    let mut c = config();
    c.max_log_range = 100;
    let s = RpcBlockSource::new(RpcClient::mocked(asserter.clone()), c);
    asserter.push_failure(alloy_json_rpc::ErrorPayload {
        code: -32005,
        message: "query returned more than 10000 results".into(),
        data: None,
    });
    asserter.push_success(&json!([transfer_log(3, 0)]));
    asserter.push_success(&json!([transfer_log(70, 0)]));
    let logs = s.range_logs(0, 99).await.unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(s.log_range(), 50);
    assert!(asserter.read_q().is_empty());
}

#[tokio::test]
async fn malformed_log_names_block_tx_and_index() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, token_bloom()));
    let mut log = transfer_log(5, 3);
    log["data"] = json!("0x01");
    asserter.push_success(&json!([log]));
    let err = source(&asserter).block_by_number(5).await.unwrap_err();
    assert!(
        matches!(err, SourceError::Malformed { log_index: 3, block, .. } if block.number == 5),
        "{err}"
    );
}

#[tokio::test]
async fn log_of_another_block_is_refused() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, token_bloom()));
    asserter.push_success(&json!([transfer_log(6, 0)]));
    let err = source(&asserter).block_by_number(5).await.unwrap_err();
    assert!(matches!(err, SourceError::Malformed { .. }), "{err}");
}

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
    c.retry = RetryConfig {
        max_attempts: 5,
        initial_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        timeout: Duration::from_millis(300),
    };
    let s = RpcBlockSource::http(&url, c).unwrap();
    assert_eq!(s.head().await.unwrap(), 42);
}

#[tokio::test]
async fn retries_give_up_with_a_transport_error() {
    let url = flaky_server(vec!["429"; 10]).await;
    let mut c = config();
    c.retry = RetryConfig {
        max_attempts: 2,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(2),
        timeout: Duration::from_secs(5),
    };
    let s = RpcBlockSource::http(&url, c).unwrap();
    let err = s.head().await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Transport { operation, .. } if operation == "eth_blockNumber"),
        "{err}"
    );
}
