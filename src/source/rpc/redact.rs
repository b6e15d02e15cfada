//! Transport errors without secrets: the inner HTTP error of alloy's transport carries the
//! whole request URL, whose path or query often holds the provider's API key (and whose
//! user info may hold a password). [`redact_error`] flattens an error chain into one
//! message with every URL cut down to its scheme, host and port.

use std::fmt;

/// An error's message chain with the URLs in it redacted; it has no source (the chain is
/// in the message), so nothing below it can print the URL again.
#[derive(Debug)]
pub(crate) struct Redacted(String);

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Redacted {}

/// `e` and its sources as one message (a source already quoted by its parent is not
/// repeated), every URL in it reduced by [`scrub_urls`].
pub(crate) fn redact_error(e: &(dyn std::error::Error + 'static)) -> Redacted {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    Redacted(scrub_urls(&message))
}

/// Ends a URL in running text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, ')' | '(' | '"' | '\'' | '<' | '>' | ',' | ';')
}

/// `text` with every `scheme://…` reduced to `scheme://host[:port]`: user info, path,
/// query and fragment are dropped.
pub(crate) fn scrub_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        out.push_str("://");
        let after = &after[3..];
        let end = after.find(ends_url).unwrap_or(after.len());
        let (url, tail) = after.split_at(end);
        let authority = url.split(['/', '?', '#']).next().unwrap_or_default();
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        out.push_str(host);
        rest = tail;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_only_scheme_host_and_port() {
        for (text, want) in [
            (
                "error sending request for url (http://h:8545/v3/KEY)",
                "error sending request for url (http://h:8545)",
            ),
            (
                "for url (https://u:KEY@h/rpc?apikey=KEY#f) and wss://h2/KEY",
                "for url (https://h) and wss://h2",
            ),
            ("no url here", "no url here"),
            ("trailing https://h:1/KEY", "trailing https://h:1"),
        ] {
            assert_eq!(scrub_urls(text), want);
            assert!(!scrub_urls(text).contains("KEY"));
        }
    }
}
