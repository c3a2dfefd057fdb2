//! Every integration test in one binary (one link of the daemon, not one
//! per file): each module is what was a file of `tests/`, and `support`
//! holds what they share (configurations, fakes, the daemon spawned beside
//! them).

mod support;

mod cli;
mod connect;
mod contract_edges;
mod daemon;
mod freshdesk;
mod fuzz_short;
mod hardening;
mod jira;
mod ledger_mapping;
mod ledger_polling;
mod ledger_sales;
mod ledger_tryton;
mod ledger_xero;
mod ledgers;
mod live_sync;
mod outbox;
mod properties;
mod quickbooks;
mod renewal_ticket;
mod reports;
mod review;
mod rt;
mod rt_sla;
mod scenarios;
mod sla_incremental;
mod sla_properties;
mod statement;
mod tryton;
mod webhooks;
mod whatif;
mod xero;
mod xero_attachment;
mod xero_batch;
mod xero_scopes;
mod zammad;
