//! What the fake Xeros of the tests share: the token answer, and invoices
//! found as Xero's `GET /Invoices` lists them.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use wiremock::{Request, ResponseTemplate};

/// A fake Xero's accounting API: how it answers a request to `path`
/// that is not for a token (those are answered [`token`]).
pub trait Accounting: Send + 'static {
    fn accounting(&mut self, r: &Request, path: &str) -> ResponseTemplate;
}

impl<T: Accounting> super::Answer for T {
    fn answer(&mut self, r: &Request) -> ResponseTemplate {
        let path = r.url.path();
        if path == "/connect/token" {
            return token();
        }
        self.accounting(r, path)
    }
}

/// The client-credentials token answer: `tok`, for 30 minutes.
pub fn token() -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"access_token": "tok", "expires_in": 1800, "token_type": "Bearer"}))
}

/// The invoices of `all` that `keep` keeps.
pub fn found(all: &[Value], keep: impl Fn(&Value) -> bool) -> Vec<Value> {
    all.iter().filter(|i| keep(i)).cloned().collect()
}

/// `200 {"Invoices": […]}`: the invoices of `all` that `keep` keeps.
pub fn invoices(all: &[Value], keep: impl Fn(&Value) -> bool) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"Invoices": found(all, keep)}))
}

/// The reference a `where=Reference=="…"` filter asks for.
pub fn reference(filter: &str) -> Option<&str> {
    filter
        .strip_prefix("Reference==\"")
        .and_then(|f| f.strip_suffix('"'))
}

/// The one invoice of a `PUT /Invoices`, given the next `inv-N` id (and
/// then whatever `amend` sets) and stored in `invoices`: Xero's answer.
pub fn create(
    invoices: &mut Vec<Value>,
    r: &Request,
    amend: impl FnOnce(&mut Value),
) -> ResponseTemplate {
    let body: Value = serde_json::from_slice(&r.body).unwrap();
    let mut inv = body["Invoices"][0].clone();
    inv["InvoiceID"] = json!(format!("inv-{}", invoices.len() + 1));
    amend(&mut inv);
    invoices.push(inv.clone());
    ResponseTemplate::new(200).set_body_json(json!({"Invoices": [inv]}))
}

/// `200 {"Attachments": […]}`: the `files` of an invoice (none when
/// `None`), each named and typed by `name_and_type`.
pub fn attachment_list<F>(
    files: Option<&Vec<F>>,
    name_and_type: impl Fn(&F) -> (&str, &str),
) -> ResponseTemplate {
    let list: Vec<Value> = files
        .into_iter()
        .flatten()
        .map(|f| {
            let (name, mime) = name_and_type(f);
            json!({"FileName": name, "MimeType": mime})
        })
        .collect();
    ResponseTemplate::new(200).set_body_json(json!({"Attachments": list}))
}

/// `dir/bridge.toml`: the lv-it month into the Xero at `uri`, report PDFs
/// made by the stand-in browser; `extra` goes into the target's table.
pub fn pdf_config(dir: &Path, uri: &str, extra: &str) -> PathBuf {
    let tables = format!(
        r#"{samples}{xero}tenant_id = "tenant-1"
requests_per_second = 1000
contacts = {{ riga-bakery = "C-1", daugava-logistics = "C-2", jurmala-hotel = "C-3" }}
{extra}
[outbox]
base_delay_secs = 1
max_delay_secs = 1
[report]
chromium = "{printer}""#,
        samples = super::folder_source("samples", &super::scenarios().join("lv-it")),
        xero = super::xero_target(uri, "s3cret"),
        printer = super::root()
            .join("tests/fixtures/pdf/fake-chromium")
            .display(),
    );
    super::write_config(dir, &super::examples().join("lv-it.yaml"), "xero", &tables)
}

/// The daemon run at 13:00 and 14:00 on the day of the first push at
/// 12:00, when any retry is due; the status after them.
pub fn an_hour_and_two_later(cfg: &Path) -> String {
    super::run_once_with(cfg, "2026-11-02T13:00:00Z", &[]);
    super::run_once_with(cfg, "2026-11-02T14:00:00Z", &[]);
    super::status(cfg, &[])
}
