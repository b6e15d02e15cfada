//! Tests on the in-memory backends alone (no server): the conformance suite, the property
//! tests against the replay oracle, and bad inputs through the watcher.

mod conformance;
mod cross_chain_refresh;
mod flaky;
mod health;
mod history;
mod metrics;
mod multichain;
mod opening_index;
mod openings;
mod property;
mod quarantine_notifications;
mod rejections;
mod resume_requests;
mod retention;
mod shutdown;
mod spawned;
