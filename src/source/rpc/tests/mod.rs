//! Node-fault tests against alloy's mock transport: scripted answers, no node.

use std::time::Duration;

use alloy_network::AnyNetwork;
use alloy_primitives::{Address, B256, Bloom, BloomInput, U256};
use alloy_provider::RootProvider;
use alloy_rpc_client::{ClientBuilder, RpcClient};
use alloy_sol_types::SolEvent;
use alloy_transport::mock::{Asserter, MockTransport};
use serde_json::json;

use super::*;
use crate::decode::{Contract, Decoders, Transfer};

mod deployment;
mod fallback;
mod http;
mod range;

const TOKEN: Address = Address::repeat_byte(0xA1);
const FEED: Address = Address::repeat_byte(0xF1);

fn config() -> RpcConfig {
    let mut c = RpcConfig::new(Decoders::new().with(TOKEN, Contract::Token { asset: TOKEN }));
    c.finality = FinalityTag::Depth;
    c.bloom_refetch_delay = Duration::from_millis(1);
    c.transport = TransportConfig {
        max_retries: 3,
        backoff: Duration::from_millis(1),
        compute_units_per_second: u64::MAX,
        timeout: Duration::from_secs(5),
    };
    c
}

/// A provider over the mock, with alloy's retry layer and our policy.
fn provider(asserter: &Asserter, c: &RpcConfig) -> RootProvider {
    let client: RpcClient = ClientBuilder::default()
        .layer(c.transport.retry_layer())
        .transport(MockTransport::new(asserter.clone()), true);
    RootProvider::new(client)
}

fn source(asserter: &Asserter) -> RpcBlockSource {
    let c = config();
    RpcBlockSource::new(provider(asserter, &c), c)
}

/// A plain mock provider: no retries, an empty queue is a transport error.
fn bare(asserter: &Asserter) -> DynProvider {
    RootProvider::new(RpcClient::mocked(asserter.clone())).erased()
}

fn header(number: u64, bloom: Bloom) -> serde_json::Value {
    json!({
        "hash": B256::repeat_byte(number as u8),
        "number": format!("{number:#x}"),
        "parentHash": B256::repeat_byte(number as u8 - 1),
        "sha3Uncles": B256::ZERO,
        "miner": Address::ZERO,
        "stateRoot": B256::ZERO,
        "transactionsRoot": B256::ZERO,
        "receiptsRoot": B256::ZERO,
        "logsBloom": bloom,
        "difficulty": "0x0",
        "gasLimit": "0x1c9c380",
        "gasUsed": "0x0",
        "timestamp": "0x10",
        "extraData": "0x",
        "mixHash": B256::ZERO,
        "nonce": "0x0000000000000000",
        "transactions": [],
        "uncles": [],
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
        "transactionIndex": "0x0",
        "logIndex": format!("{index:#x}"),
        "removed": false,
    })
}

fn token_bloom() -> Bloom {
    let mut bloom = Bloom::default();
    bloom.accrue(BloomInput::Raw(TOKEN.as_slice()));
    bloom
}

fn other_bloom() -> Bloom {
    let mut bloom = Bloom::default();
    bloom.accrue(BloomInput::Raw(Address::repeat_byte(0x77).as_slice()));
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
    assert!(asserter.read_q().is_empty());
}

#[tokio::test]
async fn a_log_the_bloom_rules_out_is_an_inconsistent_node() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, other_bloom()));
    asserter.push_success(&json!([transfer_log(5, 0)]));
    let err = source(&asserter).block_by_number(5).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Inconsistent { detail, .. } if detail.contains("logsBloom")),
        "{err}"
    );
}

/// L2 leniency: nodes that serve an all-zero bloom with logs (zkSync Era, Aurora) are not
/// checked against it.
#[tokio::test]
async fn an_all_zero_bloom_is_not_checked() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, Bloom::ZERO));
    asserter.push_success(&json!([transfer_log(5, 0)]));
    let block = source(&asserter).block_by_number(5).await.unwrap().unwrap();
    assert_eq!(block.events.len(), 1);
}

#[tokio::test]
async fn rate_limits_are_retried_by_alloys_layer() {
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
async fn too_many_results_halves_the_range_and_is_not_retried_by_the_layer() {
    let asserter = Asserter::new();
    let mut c = config();
    c.max_log_range = 100;
    let s = RpcBlockSource::new(provider(&asserter, &c), c);
    // Infura answers "too many results" with its rate-limit code: the layer must not
    // retry it (that would consume the next answers below).
    asserter.push_failure(alloy_json_rpc::ErrorPayload {
        code: -32005,
        message: "query returned more than 10000 results".into(),
        data: None,
    });
    asserter.push_success(&json!([transfer_log(3, 0)]));
    asserter.push_success(&json!([transfer_log(70, 0)]));
    let logs = s
        .first_ok(|f| Box::pin(async move { f.range_logs(0, 99).await }))
        .await
        .unwrap();
    assert_eq!(logs.len(), 2);
    assert_eq!(s.log_range(), 50);
    assert!(asserter.read_q().is_empty());
}

/// A tracked token's log that does not decode is not an error of the block (which would
/// stall every asset): it becomes that asset's `Undecodable` event at the log's place, for
/// the engine to quarantine the asset (or refuse the block, for a strict one).
#[tokio::test]
async fn malformed_log_is_an_undecodable_event_at_its_place() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, token_bloom()));
    let mut log = transfer_log(5, 3);
    log["data"] = json!("0x01");
    asserter.push_success(&json!([log]));
    let block = source(&asserter)
        .block_by_number(5)
        .await
        .unwrap()
        .expect("block 5");
    assert_eq!(block.header.number, 5);
    assert_eq!(block.events.len(), 1, "{:?}", block.events);
    let event = &block.events[0];
    assert_eq!(event.log.log_index, 3);
    assert_eq!(event.asset, TOKEN);
    assert!(
        matches!(
            event.change,
            crate::model::BalanceChange::Undecodable { .. }
        ),
        "{:?}",
        event.change
    );
}

#[tokio::test]
async fn log_of_another_block_is_an_inconsistent_node() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, token_bloom()));
    asserter.push_success(&json!([transfer_log(6, 0)]));
    let err = source(&asserter).block_by_number(5).await.unwrap_err();
    assert!(matches!(err, SourceError::Inconsistent { .. }), "{err}");
}

#[tokio::test]
async fn removed_logs_mean_the_block_changed_and_the_height_is_read_again() {
    let asserter = Asserter::new();
    asserter.push_success(&header(5, token_bloom()));
    let mut removed = transfer_log(5, 0);
    removed["removed"] = json!(true);
    asserter.push_success(&json!([removed]));
    let mut replacement = header(5, token_bloom());
    replacement["hash"] = json!(B256::repeat_byte(0x55));
    asserter.push_success(&replacement);
    let mut log = transfer_log(5, 0);
    log["blockHash"] = json!(B256::repeat_byte(0x55));
    asserter.push_success(&json!([log]));
    let block = source(&asserter).block_by_number(5).await.unwrap().unwrap();
    assert_eq!(block.header.hash, B256::repeat_byte(0x55));
    assert_eq!(block.events.len(), 1);
    assert!(asserter.read_q().is_empty());
}

/// Leniency: a header without `mixHash` / `nonce` (OpenEthereum on proof-of-authority
/// chains, older Besu) does not decode as an Ethereum header, and does with `AnyNetwork`.
#[tokio::test]
async fn headers_without_mix_hash_need_any_network() {
    let mut lean = header(5, Bloom::ZERO);
    let fields = lean.as_object_mut().unwrap();
    fields.remove("mixHash");
    fields.remove("nonce");

    let asserter = Asserter::new();
    asserter.push_success(&lean);
    let err = source(&asserter).block_by_number(5).await.unwrap_err();
    assert!(matches!(err, SourceError::Transport { .. }), "{err}");

    let asserter = Asserter::new();
    asserter.push_success(&lean);
    asserter.push_success(&json!([]));
    let any = RootProvider::<AnyNetwork>::new(RpcClient::mocked(asserter.clone()));
    let s = RpcBlockSource::<AnyNetwork>::new(any, config());
    let block = s.block_by_number(5).await.unwrap().unwrap();
    assert_eq!(block.header.number, 5);
}

#[tokio::test]
async fn feed_decimals_are_checked_before_the_first_fetch() {
    let asserter = Asserter::new();
    let mut c = config();
    c.decoders = c.decoders.with(
        FEED,
        Contract::Feed {
            asset: TOKEN,
            decimals: 8,
        },
    );
    let s = RpcBlockSource::new(provider(&asserter, &c), c);
    asserter.push_success(&alloy_primitives::Bytes::from(
        U256::from(18).to_be_bytes::<32>(),
    ));
    let err = s.head().await.unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::FeedDecimals {
                feed: FEED,
                configured: 8,
                on_chain: 18
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&FEED.to_string()), "{err}");
}

#[tokio::test]
async fn tether_owner_is_checked_before_the_first_fetch() {
    let (usdt, owner, other) = (
        Address::repeat_byte(0x7E),
        Address::repeat_byte(0x0A),
        Address::repeat_byte(0x0B),
    );
    let mut c = config();
    c.decoders = c
        .decoders
        .with(usdt, Contract::Tether { asset: usdt, owner });
    let owner_word = |a: Address| alloy_primitives::Bytes::from(a.into_word().0);

    let asserter = Asserter::new();
    let s = RpcBlockSource::new(provider(&asserter, &c), c.clone());
    asserter.push_success(&owner_word(other));
    let err = s.head().await.unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::TetherOwner { token, configured, on_chain }
                if token == usdt && configured == owner && on_chain == other
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&other.to_string()), "{err}");

    // The right owner passes, and the source answers.
    let asserter = Asserter::new();
    let s = RpcBlockSource::new(provider(&asserter, &c), c);
    asserter.push_success(&owner_word(owner));
    asserter.push_success(&"0x9");
    assert_eq!(s.head().await.unwrap(), 9);
}

#[tokio::test]
async fn a_dev_chain_whose_finalized_is_latest_is_refused() {
    let asserter = Asserter::new();
    let mut c = config();
    c.finality = FinalityTag::Finalized;
    let s = RpcBlockSource::new(provider(&asserter, &c), c.clone());
    asserter.push_success(&"0x7a69"); // eth_chainId 31337
    asserter.push_success(&"0x5"); // latest
    asserter.push_success(&header(5, Bloom::ZERO)); // finalized
    let err = s.finalized().await.unwrap_err();
    assert!(
        matches!(
            err,
            SourceError::DevChainFinality {
                chain_id: 31_337,
                tag: "finalized",
                block: 5
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("FinalityTag::Depth"), "{err}");

    // Mainnet's finalized tag lags: accepted.
    let asserter = Asserter::new();
    let s = RpcBlockSource::new(provider(&asserter, &c), c);
    asserter.push_success(&"0x1"); // eth_chainId 1
    asserter.push_success(&header(3, Bloom::ZERO)); // finalized
    assert_eq!(s.finalized().await.unwrap(), Some(3));
}
