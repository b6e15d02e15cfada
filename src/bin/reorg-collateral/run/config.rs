//! The `run` service's TOML configuration, validated up front: every error names the line
//! (and column) of the offending value.

use std::net::SocketAddr;
use std::ops::Range;
use std::time::Duration;

use alloy_primitives::Address;
use reorg_collateral::decode::{Contract, Decoders, ShareMints};
use reorg_collateral::model::{Asset, AssetRegistry};
use reorg_collateral::source::rpc::FinalityTag;
use serde::Deserialize;
use toml::Spanned;

/// A configuration error, with the line and column it is about.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub(crate) struct ConfigError {
    /// The file.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    chain: RawChain,
    #[serde(default)]
    assets: Vec<RawAsset>,
    #[serde(default)]
    postgres: RawPostgres,
    redis: Option<RawRedis>,
    #[serde(default)]
    http: RawHttp,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChain {
    endpoints: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    start_block: u64,
    confirmations: Spanned<u64>,
    #[serde(default)]
    finality: Option<Spanned<String>>,
    #[serde(default)]
    poll_interval_ms: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAsset {
    address: Spanned<String>,
    symbol: String,
    decimals: u8,
    factor_bps: Spanned<u16>,
    decoder: Spanned<String>,
    feed: Option<Spanned<String>>,
    #[serde(default = "default_feed_decimals")]
    feed_decimals: u8,
}

fn default_feed_decimals() -> u8 {
    8
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPostgres {
    schema: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    #[serde(default = "default_prefix")]
    prefix: String,
}

fn default_prefix() -> String {
    "collateral".to_owned()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<Spanned<String>>,
}

/// A validated configuration.
#[derive(Debug)]
pub(crate) struct ServiceConfig {
    /// RPC endpoint URLs, in the order to ask them.
    pub endpoints: Vec<String>,
    /// First block to ingest into an empty store.
    pub start_block: u64,
    /// Confirmation depth.
    pub confirmations: u64,
    /// How finality is read from the node.
    pub finality: FinalityTag,
    /// Wait between syncs.
    pub poll_interval: Duration,
    /// The tracked assets.
    pub assets: AssetRegistry,
    /// The decoders of their contracts.
    pub decoders: Decoders,
    /// The Postgres schema (the URL comes from `--database-url` / `DATABASE_URL`).
    pub schema: Option<String>,
    /// The Redis cache's key prefix, if a cache is configured (its URL comes from
    /// `REDIS_URL`).
    pub redis_prefix: Option<String>,
    /// The HTTP address.
    pub listen: SocketAddr,
}

/// Parses and validates `text`, read from `file`.
pub(crate) fn parse(file: &str, text: &str) -> Result<ServiceConfig, ConfigError> {
    let at = |span: Range<usize>, message: String| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ConfigError {
            file: file.to_owned(),
            line,
            column,
            message,
        }
    };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let message = e.message().to_owned();
        at(e.span().unwrap_or(0..0), message)
    })?;
    let chain = raw.chain;
    if chain.endpoints.get_ref().is_empty() {
        return Err(at(chain.endpoints.span(), "no endpoint given".into()));
    }
    let mut endpoints = Vec::new();
    for url in chain.endpoints.get_ref() {
        if !(url.get_ref().starts_with("http://") || url.get_ref().starts_with("https://")) {
            return Err(at(
                url.span(),
                "an endpoint is an http:// or https:// URL".into(),
            ));
        }
        endpoints.push(url.get_ref().clone());
    }
    if *chain.confirmations.get_ref() == 0 {
        return Err(at(
            chain.confirmations.span(),
            "confirmations must be at least 1".into(),
        ));
    }
    let finality = match &chain.finality {
        None => FinalityTag::Depth,
        Some(f) => match f.get_ref().as_str() {
            "depth" => FinalityTag::Depth,
            "finalized" => FinalityTag::Finalized,
            "safe" => FinalityTag::Safe,
            other => {
                return Err(at(
                    f.span(),
                    format!("finality `{other}`: expected `depth`, `finalized` or `safe`"),
                ));
            }
        },
    };
    let poll_interval = match &chain.poll_interval_ms {
        None => Duration::from_secs(1),
        Some(ms) if *ms.get_ref() == 0 => {
            return Err(at(ms.span(), "poll_interval_ms must be at least 1".into()));
        }
        Some(ms) => Duration::from_millis(*ms.get_ref()),
    };
    let address = |s: &Spanned<String>| {
        s.get_ref().parse::<Address>().map_err(|e| {
            at(
                s.span(),
                format!("`{}` is not an address: {e}", s.get_ref()),
            )
        })
    };
    let mut assets = Vec::new();
    let mut decoders = Decoders::new();
    for a in &raw.assets {
        let id = address(&a.address)?;
        if *a.factor_bps.get_ref() > 10_000 {
            return Err(at(
                a.factor_bps.span(),
                format!(
                    "factor_bps {} is above 10000 (100 %)",
                    a.factor_bps.get_ref()
                ),
            ));
        }
        let contract = match a.decoder.get_ref().as_str() {
            "token" => Contract::Token { asset: id },
            "weth9" => Contract::Weth9 { asset: id },
            "erc4626" => Contract::Erc4626 {
                asset: id,
                mints: ShareMints::default(),
            },
            // "vault": the name of the crate's own balance events before they were renamed.
            "balance-events" | "vault" => Contract::BalanceEvents { asset: id },
            other => {
                return Err(at(
                    a.decoder.span(),
                    format!(
                        "decoder `{other}`: expected `token`, `weth9`, `erc4626` or `balance-events`"
                    ),
                ));
            }
        };
        decoders = decoders.with(id, contract);
        if let Some(feed) = &a.feed {
            let feed = address(feed)?;
            decoders = decoders.with(
                feed,
                Contract::Feed {
                    asset: id,
                    decimals: a.feed_decimals,
                },
            );
        }
        assets.push(Asset::new(
            id,
            a.symbol.clone(),
            a.decimals,
            *a.factor_bps.get_ref(),
        ));
    }
    let assets = AssetRegistry::new(assets).map_err(|e| at(0..0, format!("assets: {e}")))?;
    let listen = match &raw.http.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 8080)),
        Some(l) => l
            .get_ref()
            .parse()
            .map_err(|e| at(l.span(), format!("listen `{}`: {e}", l.get_ref())))?,
    };
    Ok(ServiceConfig {
        endpoints,
        start_block: chain.start_block,
        confirmations: *chain.confirmations.get_ref(),
        finality,
        poll_interval,
        assets,
        decoders,
        schema: raw.postgres.schema.map(Spanned::into_inner),
        redis_prefix: raw.redis.map(|r| r.prefix),
        listen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[chain]
endpoints = ["http://127.0.0.1:8545"]
confirmations = 2

[[assets]]
address = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
symbol = "TKN"
decimals = 18
factor_bps = 8000
decoder = "token"
feed = "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512"

[redis]

[http]
listen = "127.0.0.1:0"
"#;

    #[test]
    fn a_good_config_parses() {
        let c = parse("svc.toml", GOOD).unwrap();
        assert_eq!(c.endpoints, ["http://127.0.0.1:8545"]);
        assert_eq!((c.confirmations, c.finality), (2, FinalityTag::Depth));
        assert_eq!(c.assets.iter().count(), 1);
        assert_eq!(c.decoders.addresses().count(), 2, "the token and its feed");
        assert_eq!(c.redis_prefix.as_deref(), Some("collateral"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("factor_bps = 8000", "factor_bps = 18000", 10, "above 10000"),
            (
                "decoder = \"token\"",
                "decoder = \"erc721\"",
                11,
                "decoder `erc721`",
            ),
            ("confirmations = 2", "confirmations = 0", 4, "at least 1"),
            ("symbol = \"TKN\"", "symbol = 7", 8, "string"),
            ("address = \"0x5Fb", "address = \"0xZZ", 7, "not an address"),
            // A URL (a secret) is refused in the file; the error does not repeat it.
            (
                "[redis]",
                "[redis]\nurl = \"redis://secret@host\"",
                15,
                "unknown field `url`",
            ),
        ];
        for (from, to, line, says) in cases {
            let text = GOOD.replacen(from, to, 1);
            let e = parse("svc.toml", &text).unwrap_err();
            assert_eq!(e.line, line, "{to}: {e}");
            assert!(e.to_string().contains(says), "{to}: {e}");
            assert!(
                e.to_string().starts_with(&format!("svc.toml:{line}:")),
                "{e}"
            );
            assert!(!e.to_string().contains("secret"), "{e}");
        }
    }
}
