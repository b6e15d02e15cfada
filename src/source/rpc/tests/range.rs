//! The ranged catch-up's bloom check: a bloom hit of a contract whose later logs the ranged
//! answer holds is filtered locally; any other bloom hit without logs is fetched by hash.
//! Every answer the mock holds is one request: an unexpected request finds the queue
//! empty and fails the fetch, and a queue left non-empty means a request was not made.

use super::*;

/// A second tracked token, the one the blooms falsely name.
const OTHER: Address = Address::repeat_byte(0xA2);

fn two_tokens() -> RpcConfig {
    let mut c = config();
    c.decoders = c.decoders.with(OTHER, Contract::Token { asset: OTHER });
    c
}

fn log_of(address: Address, number: u64, index: u64) -> serde_json::Value {
    let mut log = transfer_log(number, index);
    log["address"] = json!(address);
    log
}

fn bloom_of(addresses: &[Address]) -> Bloom {
    let mut bloom = Bloom::default();
    for a in addresses {
        bloom.accrue(BloomInput::Raw(a.as_slice()));
    }
    bloom
}

/// `blocks(5, 7)` straight from the endpoint (the start-up checks are not under test).
async fn catch_up(asserter: &Asserter) -> Result<Vec<crate::model::Block>, SourceError> {
    let c = two_tokens();
    let s = RpcBlockSource::new(provider(asserter, &c), c);
    s.first_ok(|f| Box::pin(async move { f.blocks(5, 7).await }))
        .await
}

#[tokio::test]
async fn a_bloom_hit_of_a_contract_the_range_answered_later_costs_no_fetch_by_hash() {
    let asserter = Asserter::new();
    // The ranged eth_getLogs, once (the mock answers it before the concurrent batch).
    asserter.push_success(&json!([
        log_of(TOKEN, 5, 0),
        log_of(TOKEN, 7, 0),
        log_of(OTHER, 7, 1),
    ]));
    // Headers (one batch): blocks 5 and 6 falsely name OTHER, which logs in block 7.
    asserter.push_success(&header(5, bloom_of(&[TOKEN, OTHER])));
    asserter.push_success(&header(6, bloom_of(&[OTHER])));
    asserter.push_success(&header(7, bloom_of(&[TOKEN, OTHER])));
    let blocks = catch_up(&asserter)
        .await
        .expect("no request beyond the range's");
    let events: Vec<usize> = blocks.iter().map(|b| b.events.len()).collect();
    assert_eq!(events, [1, 0, 2]);
    assert!(asserter.read_q().is_empty(), "every answer used");
}

#[tokio::test]
async fn a_bloom_hit_after_the_contracts_last_log_in_the_range_is_fetched_by_hash() {
    let asserter = Asserter::new();
    // Block 7 names OTHER, whose only log in the ranged answer is in block 5: the node's
    // index may lag at 7, so 7 is fetched by hash, and the by-hash answer has the log.
    asserter.push_success(&json!([log_of(OTHER, 5, 0)]));
    asserter.push_success(&header(5, bloom_of(&[OTHER])));
    asserter.push_success(&header(6, Bloom::default()));
    asserter.push_success(&header(7, bloom_of(&[OTHER])));
    asserter.push_success(&json!([log_of(OTHER, 7, 4)]));
    let blocks = catch_up(&asserter).await.expect("catch-up");
    let events: Vec<usize> = blocks.iter().map(|b| b.events.len()).collect();
    assert_eq!(events, [1, 0, 1], "block 7's log, found by hash");
    assert!(asserter.read_q().is_empty(), "block 7 fetched by hash once");
}
