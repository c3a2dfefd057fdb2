//! The fuzz targets' bodies, shared by `fuzz/` (cargo fuzz, libFuzzer) and
//! `tests/api/fuzz_short.rs` (their corpora and a short proptest run inside
//! `cargo test`). Each takes any bytes and must not panic: a parser
//! answers Ok or Err, a renderer writes something.

#![allow(dead_code)]

use std::path::Path;
use std::sync::OnceLock;

use connectors::helpdesk::{HelpdeskApi, Mapped, SourceMap};
use contract_bridge::export::{self, Step};

/// The ticket-export parser (spec/offline-format.md), and the locator its
/// error messages use.
pub fn export(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match export::parse(Path::new("fuzz.json"), text) {
        Ok(tickets) => {
            for (i, t) in tickets.iter().enumerate().take(4) {
                let _ = export::locate(
                    text,
                    &[Step::Key("tickets"), Step::Index(i), Step::Key("work")],
                );
                let _ = export::locate_ticket(text, t.id.as_str());
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    let _ = export::locate(
        text,
        &[Step::Key("tickets"), Step::Index(0), Step::Key("id")],
    );
}

/// The mapping parser and compiler (one YAML file), and the duration
/// syntax (`30m`, `7d`) it shares with `statement-link --valid`.
pub fn mapping(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = mapping::parse_duration(text);
    let _ = mapping::parse_text(Path::new("fuzz.yaml"), text);
    // `load` reads files: one per process, rewritten for each input.
    let path = std::env::temp_dir().join(format!("cb-fuzz-mapping-{}.yaml", std::process::id()));
    if std::fs::write(&path, text).is_ok() {
        match mapping::load(&path) {
            Ok(loaded) => {
                let _ = loaded.book.contracts.len();
            }
            Err(d) => {
                let _ = d.to_string();
            }
        }
    }
}

const SECRET: &str = "fuzz-secret";

fn hmac_hex<M: hmac::Mac + hmac::KeyInit>(body: &[u8]) -> String {
    let mut mac = <M as hmac::KeyInit>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// A helpdesk's webhook `body`, signed (`X-Hub-Signature: signature`) and
/// numbered by its `delivery` header, as the helpdesk at `config` sends it.
fn deliver<C>(config: &C, signature: &str, delivery: &str, body: &[u8])
where
    for<'a> Mapped<'a, C>: HelpdeskApi,
{
    let map = SourceMap::default();
    let api = Mapped { config, map: &map };
    let headers = vec![
        ("X-Hub-Signature".to_owned(), signature.to_owned()),
        (delivery.to_owned(), "d-1".to_owned()),
    ];
    let _ = api.webhook(&headers, body, SECRET);
}

/// Every webhook body parser, the first byte choosing which; signed with
/// the right secret so the body reaches the parser behind the signature.
pub fn webhooks(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 5 {
        // `type = "webhook"`: an export in the body, each ticket then read
        // as the engine reads it.
        0 => {
            if let Ok(snapshots) = connectors::webhook::parse(body) {
                for s in snapshots.iter().take(8) {
                    let text = format!("{{\"tickets\":[{}]}}", s.json);
                    let _ = export::parse(Path::new("webhook body"), &text);
                }
            }
        }
        1 => {
            let config: connectors::zammad::ZammadConfig = serde_json::from_value(
                serde_json::json!({"url": "https://desk.example.com/", "token": "t"}),
            )
            .unwrap();
            let signature = format!("sha1={}", hmac_hex::<hmac::Hmac<sha1::Sha1>>(body));
            deliver(&config, &signature, "X-Zammad-Delivery", body);
        }
        2 => {
            let config: connectors::jira::JiraConfig = serde_json::from_value(serde_json::json!({
                "url": "https://example.atlassian.net", "jql": "project = SD",
                "email": "a@example.com", "api_token": "t"
            }))
            .unwrap();
            let signature = format!("sha256={}", hmac_hex::<hmac::Hmac<sha2::Sha256>>(body));
            deliver(&config, &signature, "X-Atlassian-Webhook-Identifier", body);
        }
        3 => {
            let _ = connectors::xero::webhook_signed(SECRET, body, std::str::from_utf8(body).ok());
            if let Ok(events) = connectors::xero::webhook_events(body) {
                for e in &events {
                    let _ = e.id();
                }
            }
        }
        // The bridge's own signature check, on headers made of the body.
        _ => {
            let text = String::from_utf8_lossy(body);
            let (ts, sig) = text.split_once('\n').unwrap_or((&text, ""));
            let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
            let _ = contract_bridge::daemon::ingest::webhook::verify(
                SECRET,
                Some(ts),
                Some(sig),
                body,
                now,
                300,
            );
        }
    }
}

/// The example mapping, compiled once.
fn examples() -> &'static mapping::Loaded {
    static BOOK: OnceLock<mapping::Loaded> = OnceLock::new();
    BOOK.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        // The harness runs from the repository (tests) or from fuzz/.
        let dir = [
            root.join("mappings/examples"),
            root.join("../mappings/examples"),
        ]
        .into_iter()
        .find(|d| d.is_dir())
        .expect("mappings/examples");
        mapping::load(&dir).unwrap_or_else(|d| panic!("{d}"))
    })
}

/// The text renderer: a table of cells cut from the input, and an export
/// billed with the example mapping rendered with `--explain` and as open
/// SLA clocks.
pub fn render(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let rows: Vec<Vec<String>> = text
        .split('\n')
        .take(64)
        .map(|l| l.split('\t').take(16).map(str::to_owned).collect())
        .collect();
    let _ = contract_bridge::render::table(&["a", "b", "c"], &rows);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(tickets) = export::parse(Path::new("fuzz.json"), text) else {
        return;
    };
    let period: engine::period::Month = "2026-10".parse().unwrap();
    let as_of = chrono::DateTime::from_timestamp(1_793_000_000, 0).unwrap();
    if let Ok(doc) = engine::bill(&examples().book, &tickets, period, Some(as_of)) {
        let _ = contract_bridge::render::invoices(&doc, true);
        let _ = contract_bridge::render::invoices(&doc, false);
        let open: Vec<_> = doc.sla.iter().filter(|r| r.met_at.is_none()).collect();
        let _ = contract_bridge::render::open_clocks(&open, as_of);
    }
}
