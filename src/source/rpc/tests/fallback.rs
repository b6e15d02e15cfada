//! Several endpoints over mock transports: dead, lying, regressing and lagging nodes.

use alloy_primitives::{B256, Bloom};
use serde_json::json;

use super::*;

#[tokio::test]
async fn a_dead_endpoint_fails_over_to_the_next() {
    let dead = Asserter::new(); // empty queue: every call is a transport error
    let live = Asserter::new();
    live.push_success(&"0x9");
    live.push_success(&header(5, token_bloom()));
    live.push_success(&json!([transfer_log(5, 0)]));
    let s = RpcBlockSource::with_fallbacks(bare(&dead), [bare(&live)], config());
    assert_eq!(s.head().await.unwrap(), 9);
    let block = s.block_by_number(5).await.unwrap().unwrap();
    assert_eq!(block.events.len(), 1);
    assert!(live.read_q().is_empty());
}

#[tokio::test]
async fn logs_disagreeing_with_the_bloom_move_to_the_next_endpoint() {
    let liar = Asserter::new();
    let honest = Asserter::new();
    // Both report the same head: the liar, first in order, is asked first.
    liar.push_success(&"0x9");
    honest.push_success(&"0x9");
    liar.push_success(&header(5, token_bloom()));
    for _ in 0..3 {
        liar.push_success(&json!([])); // misses the log the bloom announces
    }
    honest.push_success(&header(5, token_bloom()));
    honest.push_success(&json!([transfer_log(5, 0)]));
    let s = RpcBlockSource::with_fallbacks(bare(&liar), [bare(&honest)], config());
    assert_eq!(s.head().await.unwrap(), 9);
    let block = s.block_by_number(5).await.unwrap().unwrap();
    assert_eq!(block.events.len(), 1, "the honest endpoint's logs");
    assert!(liar.read_q().is_empty() && honest.read_q().is_empty());
    // The liar is demoted: the next fetch goes to the honest endpoint first.
    assert_eq!(s.order(), vec![1, 0]);
}

#[tokio::test]
async fn a_head_going_back_on_one_endpoint_is_not_trusted() {
    let a = Asserter::new();
    let b = Asserter::new();
    let s = RpcBlockSource::with_fallbacks(bare(&a), [bare(&b)], config());
    a.push_success(&"0xa");
    b.push_success(&"0xa");
    assert_eq!(s.head().await.unwrap(), 10);
    // `a` goes back to 8 while `b` moves on: `a` is demoted, the head is `b`'s.
    a.push_success(&"0x8");
    b.push_success(&"0xb");
    assert_eq!(s.head().await.unwrap(), 11);
    assert_eq!(s.order(), vec![1, 0]);
    // Both go back together: a reorg to a shorter chain, reported.
    // (`a` is demoted, so only `b` is asked.)
    b.push_success(&"0x9");
    assert_eq!(s.head().await.unwrap(), 9);
    assert!(a.read_q().is_empty() && b.read_q().is_empty());
}

#[tokio::test]
async fn a_lagging_endpoint_is_asked_after_the_one_ahead() {
    let lagging = Asserter::new();
    let ahead = Asserter::new();
    lagging.push_success(&"0x3");
    ahead.push_success(&"0x9");
    let s = RpcBlockSource::with_fallbacks(bare(&lagging), [bare(&ahead)], config());
    assert_eq!(s.head().await.unwrap(), 9);
    assert_eq!(s.order(), vec![1, 0]);
    ahead.push_success(&header(5, token_bloom()));
    ahead.push_success(&json!([transfer_log(5, 0)]));
    assert!(s.block_by_number(5).await.unwrap().is_some());
    // A block only the lagging endpoint has not seen yet: asked of both, found on one.
    lagging.push_success(&serde_json::Value::Null);
    ahead.push_success(&serde_json::Value::Null);
    assert!(
        s.block_by_hash(B256::repeat_byte(0x42))
            .await
            .unwrap()
            .is_none()
    );
    assert!(lagging.read_q().is_empty() && ahead.read_q().is_empty());
}

#[tokio::test]
async fn the_finalized_height_is_the_lowest_of_the_endpoints_tags() {
    let a = Asserter::new();
    let b = Asserter::new();
    let mut c = config();
    c.finality = FinalityTag::Finalized;
    let s = RpcBlockSource::with_fallbacks(bare(&a), [bare(&b)], c);
    // Start-up check on the first endpoint: chain id 1, not a dev chain.
    a.push_success(&"0x1");
    a.push_success(&header(9, Bloom::ZERO));
    b.push_success(&header(7, Bloom::ZERO));
    assert_eq!(s.finalized().await.unwrap(), Some(7));
    // An endpoint without the tag does not hold finality back.
    a.push_failure(alloy_json_rpc::ErrorPayload {
        code: -32602,
        message: "unknown block tag finalized".into(),
        data: None,
    });
    b.push_success(&header(8, Bloom::ZERO));
    assert_eq!(s.finalized().await.unwrap(), Some(8));
    assert!(a.read_q().is_empty() && b.read_q().is_empty());
}

#[test]
fn endpoint_failures_are_counted_per_endpoint() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};

    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let dead = Asserter::new(); // every call is a transport error
    let live = Asserter::new();
    live.push_success(&"0x9");
    let s = RpcBlockSource::with_fallbacks(bare(&dead), [bare(&live)], config());
    let labels: Vec<String> = s.endpoints.iter().map(|e| e.label.clone()).collect();
    metrics::with_local_recorder(&recorder, || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                assert_eq!(s.head().await.unwrap(), 9);
            });
    });
    let counts: Vec<(String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(k, ..)| k.key().name() == crate::metrics::names::SOURCE_ERRORS)
        .map(|(k, _, _, v)| {
            let endpoint = k.key().labels().find(|l| l.key() == "endpoint").unwrap();
            let DebugValue::Counter(n) = v else {
                panic!("a counter: {v:?}")
            };
            (endpoint.value().to_owned(), n)
        })
        .collect();
    assert_eq!(
        counts,
        vec![(labels[0].clone(), 1)],
        "the dead endpoint's failure alone"
    );
}
