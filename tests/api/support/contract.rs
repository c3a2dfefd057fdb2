//! The contract test: every request an integration test sent to a mocked
//! Xero or Jira Cloud (wiremock records them) is checked against the
//! vendor's own OpenAPI description, vendored in `tests/contract/` with its
//! licence (see tests/contract/README.md): the method and path are an
//! operation, its required path, query and header parameters are there, no
//! query parameter is one it does not declare, and a JSON body validates
//! against the operation's schema (`$ref`, `type`, `enum`, `required`,
//! `properties`, `items`, `allOf`/`oneOf`/`anyOf`, `nullable`; a property
//! the schema does not list is refused too, which JSON Schema would allow,
//! to catch a misspelt field).
//!
//! A mock mirrors our own parser; the vendor's description does not. Where
//! the description and the real API differ, [`KNOWN_DIFFERENCES`] says so
//! with the vendor documentation that shows it.

use std::sync::LazyLock;

use serde_json::Value;
use wiremock::Request;

/// Where a vendor's description and its real API differ, and what we do.
pub const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    (
        "xero",
        "the `xero-tenant-id` header is `required: true` on every operation (`requiredHeader`); it is not checked",
        "a custom connection reaches one organisation and needs no tenant header: developer.xero.com/faq/custom-integration (\"Do I need to specify the xero-tenant-id header when making API calls? No\")",
    ),
    (
        "xero",
        "attachment uploads declare only `application/octet-stream` bodies; the PDF goes as `application/pdf`",
        "Xero keeps the Content-Type sent as the attachment's MimeType: the description's own answer example for `PUT /Invoices/{InvoiceID}/Attachments/{FileName}` has `MimeType: image/jpg`, and developer.xero.com/documentation/api/accounting/attachments uploads the raw bytes with the file's type",
    ),
    (
        "xero",
        "operations' `security` still names `accounting.transactions` for /Invoices; scopes are not checked here (see connectors/src/xero/scopes.rs)",
        "Xero retired the broad scope for apps created since 2 March 2026 in favour of `accounting.invoices`: developer.xero.com/documentation/guides/oauth2/scopes/ (granular scopes)",
    ),
    (
        "xero",
        "token requests (`POST /connect/token` at identity.xero.com) are not in the accounting description; not checked",
        "the identity server is a separate OAuth 2.0 endpoint (RFC 6749 §4.4 and §6), described at developer.xero.com/documentation/guides/oauth2/custom-connections/",
    ),
    (
        "jira",
        "Jira Service Management requests (`/rest/servicedeskapi/…`) are not checked",
        "no copy of Atlassian's Service Management description was at hand to vendor; the platform description does not hold those paths",
    ),
];

/// A path template's parameters: `(name, decoded value)`.
type PathParams = Vec<(String, String)>;

/// A vendor's OpenAPI description and the prefix its paths sit under in our mocks.
pub struct Spec {
    vendor: &'static str,
    doc: Value,
    /// Stripped from a request's path before matching (Xero's server URL path).
    prefix: &'static str,
}

pub static XERO: LazyLock<Spec> =
    LazyLock::new(|| vendored("xero", "xero/xero_accounting.yaml", "/api.xro/2.0"));

pub static JIRA: LazyLock<Spec> = LazyLock::new(|| vendored("jira", "jira/swagger-v3.v3.json", ""));

/// The description vendored at `tests/contract/{file}` (JSON or YAML, by its name).
fn vendored(vendor: &'static str, file: &str, prefix: &'static str) -> Spec {
    let text = std::fs::read_to_string(super::root().join("tests/contract").join(file)).unwrap();
    let doc = if file.ends_with(".json") {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file} is JSON: {e}"))
    } else {
        serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{file} is YAML: {e}"))
    };
    Spec {
        vendor,
        doc,
        prefix,
    }
}

/// Checks each request to Xero's accounting API among `requests` (token
/// requests are left out, see [`KNOWN_DIFFERENCES`]); panics naming every
/// one out of contract. The number checked.
pub fn check_xero(requests: &[Request]) -> usize {
    XERO.check_all(requests, |p| p.starts_with("/api.xro/2.0/"))
}

/// Every request of the test to the Xero at `server` (at least one), within
/// Xero's published API description.
pub async fn within_xero(server: &wiremock::MockServer) {
    let requests = server.received_requests().await.unwrap();
    assert!(check_xero(&requests) > 0);
}

/// Checks each request to the Jira Cloud platform API (`/rest/api/3/…`).
pub fn check_jira(requests: &[Request]) -> usize {
    JIRA.check_all(requests, |p| p.starts_with("/rest/api/3/"))
}

impl Spec {
    /// A request's path as the description writes it (below [`Spec::prefix`]).
    fn path_of<'r>(&self, r: &'r Request) -> &'r str {
        let path = r.url.path();
        path.strip_prefix(self.prefix).unwrap_or(path)
    }

    fn check_all(&self, requests: &[Request], ours: impl Fn(&str) -> bool) -> usize {
        let mut wrong = Vec::new();
        let mut n = 0;
        // Operation → requests checked, for the log.
        let mut seen: std::collections::BTreeMap<String, usize> = Default::default();
        for r in requests.iter().filter(|r| ours(r.url.path())) {
            n += 1;
            let path = self.path_of(r);
            let method = r.method.as_str().to_ascii_lowercase();
            if let Some((template, _, _)) = self.operation_path(path, &method) {
                *seen.entry(format!("{} {template}", r.method)).or_default() += 1;
            }
            let errors = self.check(r);
            if !errors.is_empty() {
                wrong.push(format!(
                    "{} {}: {}",
                    r.method,
                    r.url.path(),
                    errors.join("; ")
                ));
            }
        }
        wrong.dedup();
        eprintln!("contract {}: {n} request(s) checked: {seen:?}", self.vendor);
        assert!(
            wrong.is_empty(),
            "requests outside {}'s published API description:\n{}",
            self.vendor,
            wrong.join("\n")
        );
        n
    }

    /// What is wrong with one request; empty: it is within the contract.
    pub fn check(&self, r: &Request) -> Vec<String> {
        let path = self.path_of(r);
        let method = r.method.as_str().to_ascii_lowercase();
        let Some((template, item, path_params)) = self.operation_path(path, &method) else {
            return vec![format!("no operation `{method} {path}` in the description")];
        };
        let op = &item[&method];
        let mut errors = Vec::new();
        let params: Vec<Value> = item["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(op["parameters"].as_array().into_iter().flatten())
            .map(|p| self.resolve(p).clone())
            .collect();
        let query: Vec<(String, String)> = r.url.query_pairs().into_owned().collect();
        for p in &params {
            let name = p["name"].as_str().unwrap_or_default();
            let required = p["required"] == true;
            match p["in"].as_str() {
                Some("path") => {
                    if let Some(v) = path_params.iter().find(|(n, _)| n == name).map(|(_, v)| v) {
                        self.value_errors(&p["schema"], v, &format!("path {name}"), &mut errors);
                    } else if required {
                        errors.push(format!("path parameter {name} of {template} missing"));
                    }
                }
                Some("query") => {
                    let given = query.iter().find(|(k, _)| k == name);
                    match given {
                        Some((_, v)) => self.value_errors(
                            &p["schema"],
                            v,
                            &format!("query {name}"),
                            &mut errors,
                        ),
                        None if required => errors.push(format!("query parameter {name} missing")),
                        None => {}
                    }
                }
                Some("header") => {
                    // Known difference: Xero's tenant header (custom connections).
                    let known =
                        self.vendor == "xero" && name.eq_ignore_ascii_case("xero-tenant-id");
                    if required && !known && !r.headers.contains_key(name) {
                        errors.push(format!("header {name} missing"));
                    }
                }
                _ => {}
            }
        }
        for (k, _) in &query {
            let declared = params
                .iter()
                .any(|p| p["in"] == "query" && p["name"].as_str() == Some(k.as_str()));
            if !declared {
                errors.push(format!("query parameter {k} is not one of the operation's"));
            }
        }
        let body = &op["requestBody"];
        if body.is_object() {
            let body = self.resolve(body);
            let content_type = r
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
                .unwrap_or_default();
            if body["required"] == true && r.body.is_empty() {
                errors.push("the request body is required".into());
            }
            let content = &body["content"];
            if content_type == "application/json" {
                match (
                    content.get("application/json"),
                    serde_json::from_slice::<Value>(&r.body),
                ) {
                    (Some(c), Ok(v)) => self.validate(&c["schema"], &v, "body", &mut errors, 0),
                    (None, _) => errors.push("the operation takes no JSON body".into()),
                    (_, Err(e)) => errors.push(format!("the body is not JSON: {e}")),
                }
            } else if content.get(&content_type).is_none() {
                // Known difference: Xero attachments carry the file's own type.
                let known = self.vendor == "xero"
                    && content.get("application/octet-stream").is_some()
                    && !content_type.is_empty();
                if !known {
                    errors.push(format!("the operation takes no `{content_type}` body"));
                }
            }
        } else if !r.body.is_empty() {
            errors.push("the operation takes no body".into());
        }
        errors
    }

    /// The path template matching `path` that has an operation `method`,
    /// the most literal first, with its item and the path parameters' values.
    fn operation_path(&self, path: &str, method: &str) -> Option<(String, &Value, PathParams)> {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut best: Option<(usize, String, &Value, PathParams)> = None;
        for (template, item) in self.doc["paths"].as_object()? {
            if item.get(method).is_none() {
                continue;
            }
            let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
            if parts.len() != segments.len() {
                continue;
            }
            let mut params = Vec::new();
            let mut literal = 0;
            let fits = parts.iter().zip(&segments).all(|(t, s)| {
                if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                    params.push((name.to_owned(), decode(s)));
                    !s.is_empty()
                } else {
                    literal += 1;
                    t == s
                }
            });
            if fits && best.as_ref().is_none_or(|b| literal > b.0) {
                best = Some((literal, template.clone(), item, params));
            }
        }
        best.map(|(_, t, i, p)| (t, i, p))
    }

    fn resolve<'a>(&'a self, v: &'a Value) -> &'a Value {
        let mut v = v;
        for _ in 0..16 {
            match v["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
                Some(pointer) => {
                    v = self
                        .doc
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("{}: no {pointer}", self.vendor))
                }
                None => return v,
            }
        }
        v
    }

    /// A parameter's text value against its schema (integers, booleans,
    /// enums; an array as comma-separated items, OpenAPI's `form` style).
    fn value_errors(&self, schema: &Value, text: &str, at: &str, errors: &mut Vec<String>) {
        let schema = self.resolve(schema);
        let value = match schema["type"].as_str() {
            Some("integer") => match text.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => return errors.push(format!("{at}: `{text}` is not an integer")),
            },
            Some("number") => match text.parse::<f64>() {
                Ok(n) => Value::from(n),
                Err(_) => return errors.push(format!("{at}: `{text}` is not a number")),
            },
            Some("boolean") => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return errors.push(format!("{at}: `{text}` is not true or false")),
            },
            Some("array") => Value::Array(
                text.split(',')
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
            _ => Value::String(text.to_owned()),
        };
        self.validate(schema, &value, at, errors, 0);
    }

    fn validate(
        &self,
        schema: &Value,
        v: &Value,
        at: &str,
        errors: &mut Vec<String>,
        depth: usize,
    ) {
        if depth > 64 {
            return;
        }
        let schema = self.resolve(schema);
        if v.is_null() && schema["nullable"] == true {
            return;
        }
        for s in schema["allOf"].as_array().into_iter().flatten() {
            self.validate(s, v, at, errors, depth + 1);
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(options) = schema[key].as_array() {
                let fits = options.iter().any(|s| {
                    let mut e = Vec::new();
                    self.validate(s, v, at, &mut e, depth + 1);
                    e.is_empty()
                });
                if !fits {
                    errors.push(format!("{at}: fits none of the {key} schemas"));
                }
            }
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(v)
        {
            errors.push(format!(
                "{at}: {v} is not one of {}",
                Value::Array(allowed.clone())
            ));
        }
        let ty = schema["type"].as_str();
        let fits = match ty {
            Some("object") => v.is_object(),
            Some("array") => v.is_array(),
            Some("string") => v.is_string(),
            Some("boolean") => v.is_boolean(),
            Some("integer") => v.is_i64() || v.is_u64(),
            Some("number") => v.is_number(),
            _ => true,
        };
        if !fits {
            errors.push(format!(
                "{at}: {v} is not of type {}",
                ty.unwrap_or_default()
            ));
            return;
        }
        if let Some(items) = v.as_array()
            && schema.get("items").is_some()
        {
            for (i, item) in items.iter().enumerate() {
                self.validate(
                    &schema["items"],
                    item,
                    &format!("{at}[{i}]"),
                    errors,
                    depth + 1,
                );
            }
        }
        if let Some(object) = v.as_object() {
            for name in schema["required"].as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                if !object.contains_key(name) {
                    errors.push(format!("{at}.{name}: required, missing"));
                }
            }
            let properties = schema["properties"].as_object();
            for (name, value) in object {
                let here = format!("{at}.{name}");
                match properties.and_then(|p| p.get(name)) {
                    Some(s) => self.validate(s, value, &here, errors, depth + 1),
                    None => match schema.get("additionalProperties") {
                        Some(Value::Bool(false)) => {
                            errors.push(format!("{here}: not a property of the schema"))
                        }
                        Some(Value::Bool(true)) => {}
                        Some(s) => self.validate(s, value, &here, errors, depth + 1),
                        // Stricter than JSON Schema: catches a misspelt field.
                        None if properties.is_some() => {
                            errors.push(format!("{here}: not a property of the schema"))
                        }
                        None => {}
                    },
                }
            }
        }
    }
}

/// A percent-encoded path segment, decoded.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
