//! The work reports of the public scenarios.
//!
//! - Snapshots (insta) of every customer's October page in its own language
//!   and of Trinax's quarter and year to November.
//! - In a real browser (headless Chromium, Debian's `chromium`): every
//!   customer's page in all five languages is loaded and its DOM read back;
//!   the totals on the page must equal the bill documents' (summed over the
//!   months a quarterly or yearly report covers), every table must have
//!   header cells with `scope`, the page one h1 and its sections h2, and the
//!   chart's colours at least 3:1 contrast on its background. One
//!   screenshot per scenario is written to `target/report-screenshots/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    examples, folder_source, folder_target, root, run_once_with, scenarios, succeeded, write_config,
};
use contract_bridge::report;
use engine::contract::Language;
use engine::document::BillDocument;
use engine::period::Month;
use engine::ticket::{CustomerKey, Ticket};
use rust_decimal::Decimal;

const SCENARIOS: [&str; 5] = ["akte-sla", "itech-klippekort", "lv-it", "moneo", "trinax"];

struct Scenario {
    book: engine::ContractBook,
    tickets: Vec<Ticket>,
}

fn scenario(name: &'static str) -> Scenario {
    let book = mapping::load(&root().join(format!("mappings/examples/{name}.yaml")))
        .unwrap_or_else(|d| panic!("{d}"))
        .book;
    let (tickets, _) = contract_bridge::export::read(
        &root().join(format!("tests/fixtures/scenarios/{name}/tickets.json")),
    )
    .unwrap();
    Scenario { book, tickets }
}

impl Scenario {
    fn customers(&self) -> Vec<CustomerKey> {
        self.book.contracts.keys().cloned().collect()
    }

    fn report(
        &self,
        customer: &CustomerKey,
        period: Month,
        lang: Option<Language>,
    ) -> report::Rendered {
        let templates = report::templates(None).unwrap();
        let mut bills = BTreeMap::new();
        report::bill_months(
            &self.book,
            &self.tickets,
            customer,
            period,
            None,
            &mut bills,
        )
        .unwrap();
        report::render(
            &templates,
            &self.book,
            &self.tickets,
            &bills,
            customer,
            period,
            lang,
            false,
        )
        .unwrap()
    }

    /// What the bill documents say the report must total: each month's
    /// invoice total of the customer, over the months the report covers.
    fn expected_totals(&self, customer: &CustomerKey, period: Month) -> Vec<Decimal> {
        let contract = &self.book.contracts[customer];
        contract
            .report
            .every
            .first_month(period)
            .through(period)
            .map(|m| {
                let doc: BillDocument = engine::bill(&self.book, &self.tickets, m, None).unwrap();
                doc.invoices
                    .iter()
                    .find(|i| &i.customer == customer)
                    .map_or(Decimal::ZERO, |i| i.total_net.amount())
            })
            .collect()
    }
}

fn oct() -> Month {
    "2026-10".parse().unwrap()
}

// ------------------------------------------------------------------ snapshots

#[test]
fn every_customers_october_report_matches_its_snapshot() {
    for name in SCENARIOS {
        let s = scenario(name);
        for c in s.customers() {
            let page = s.report(&c, oct(), None);
            insta::assert_snapshot!(format!("{name}-{c}-2026-10"), page.html);
        }
    }
}

#[test]
fn quarterly_and_yearly_reports_sum_their_months() {
    let s = scenario("trinax");
    let nov: Month = "2026-11".parse().unwrap();
    for (customer, months) in [("alert-co", 2), ("access-co", 11), ("walkin-co", 1)] {
        let key = CustomerKey::new(customer);
        let page = s.report(&key, nov, Some(Language::En));
        let expected = s.expected_totals(&key, nov);
        assert_eq!(expected.len(), months, "{customer}");
        assert_eq!(page.view.months.len(), months, "{customer}");
        let sum: Decimal = expected.iter().sum();
        assert_eq!(page.view.total_plain, format!("{:.2}", sum), "{customer}");
    }
    let alert = s.report(&CustomerKey::new("alert-co"), nov, None);
    insta::assert_snapshot!("trinax-alert-co-2026-Q4-to-11", alert.html);
}

// -------------------------------------------------------------- the browser

/// The headless Chromium of the browser test: `CHROMIUM`, else `chromium` on PATH.
fn chromium() -> PathBuf {
    let configured = std::env::var_os("CHROMIUM").map(PathBuf::from);
    report::chromium(Some(configured.as_deref().unwrap_or(Path::new("chromium")))).unwrap_or_else(|| {
        panic!(
            "the browser test needs headless Chromium: no `{}` found (Debian: apt-get install chromium; .ci/run installs it; or set CHROMIUM=/path/to/chrome)",
            configured.map_or_else(|| "chromium on PATH".to_owned(), |p| p.display().to_string())
        )
    })
}

/// Runs Chromium headless on `page` with `args`; its stdout.
fn browse(chromium: &Path, page: &Path, args: &[String]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    assert!(
        out.status.success(),
        "chromium failed on {}: {}",
        page.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text of every element that opens with `open` (up to its `</tag>`),
/// markup removed and entities of the serializer resolved.
fn texts(dom: &str, open: &str, tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(i) = rest.find(open) {
        let after = &rest[i + open.len()..];
        let after = &after[after.find('>').map_or(0, |j| j + 1)..];
        let end = after.find(&format!("</{tag}>")).unwrap_or(after.len());
        let mut text = String::new();
        let mut in_tag = false;
        for ch in after[..end].chars() {
            match ch {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => text.push(c),
                _ => {}
            }
        }
        out.push(text.replace("&nbsp;", "\u{a0}").replace("&amp;", "&"));
        rest = &after[end..];
    }
    out
}

/// An amount as a reader sees it, in any of the five languages: the last
/// `.` or `,` followed by exactly two digits is the decimal point; every
/// other separator, space and currency sign is dropped.
fn amount_on_page(text: &str) -> Decimal {
    let kept: String = text
        .chars()
        .filter(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | '-'))
        .collect();
    let kept = kept.trim_matches(|c| c == '.' || c == ',');
    let (int, frac) = match kept.rfind(['.', ',']) {
        Some(i) if kept.len() - i == 3 => (&kept[..i], &kept[i + 1..]),
        _ => (kept, "0"),
    };
    let int: String = int
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '-')
        .collect();
    format!("{int}.{frac}")
        .parse()
        .unwrap_or_else(|e| panic!("`{text}` is not an amount: {e}"))
}

/// WCAG 2 relative luminance of `#rrggbb`.
fn luminance(hex: &str) -> f64 {
    let hex = hex.trim_start_matches('#');
    let ch = |i: usize| {
        let v = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
        if v <= 0.039_28 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    0.2126 * ch(0) + 0.7152 * ch(2) + 0.0722 * ch(4)
}

fn contrast(a: &str, b: &str) -> f64 {
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

/// The value of `attr="…"` in the first element that opens with `open`.
fn attr(dom: &str, open: &str, attr: &str) -> Option<String> {
    let start = dom.find(open)?;
    let element = &dom[start..start + dom[start..].find('>')?];
    let key = format!("{attr}=\"");
    let v = &element[element.find(&key)? + key.len()..];
    Some(v[..v.find('"')?].to_owned())
}

/// Everything the browser test checks on one loaded page; the problems found.
fn check_page(dom: &str, lang: Language, expected: &[Decimal]) -> Vec<String> {
    let mut problems = Vec::new();
    if !dom.contains(&format!("<html lang=\"{}\"", lang.code())) {
        problems.push(format!("the page does not say lang=\"{}\"", lang.code()));
    }
    let total = texts(dom, "<strong id=\"total\"", "strong");
    let want: Decimal = expected.iter().sum();
    match total.as_slice() {
        [t] if amount_on_page(t) == want => {}
        other => problems.push(format!("total on the page {other:?}, the bills say {want}")),
    }
    let month_totals: Vec<Decimal> = texts(dom, "<td class=\"num month-total\"", "td")
        .iter()
        .map(|t| amount_on_page(t))
        .collect();
    let billed: Vec<Decimal> = expected.iter().copied().filter(|d| !d.is_zero()).collect();
    if month_totals != billed {
        problems.push(format!(
            "month totals on the page {month_totals:?}, the bills say {billed:?}"
        ));
    }
    if dom.matches("<h1").count() != 1 {
        problems.push("not exactly one h1".into());
    }
    if dom.matches("<h2").count() < 3 {
        problems.push("fewer than 3 h2 section headings".into());
    }
    for (i, table) in dom.split("<table").skip(1).enumerate() {
        let table = &table[..table.find("</table>").unwrap_or(table.len())];
        if !table.contains("<th scope=") {
            problems.push(format!("table {i} has no header cell with scope"));
        }
        let unscoped = table
            .match_indices("<th")
            .filter(|(j, _)| !table[*j..].starts_with("<thead"))
            .filter(|(j, _)| {
                let el = &table[*j..*j + table[*j..].find('>').unwrap_or(0)];
                !el.contains("scope=")
            })
            .count();
        if unscoped > 0 {
            problems.push(format!(
                "table {i} has {unscoped} header cell(s) without scope"
            ));
        }
    }
    if dom.contains("<svg") {
        let bg = attr(dom, "<svg", "data-background").unwrap_or_else(|| "#ffffff".into());
        for (open, a) in [
            ("<rect class=\"bar\"", "fill"),
            ("<polyline class=\"line\"", "stroke"),
        ] {
            if let Some(colour) = attr(dom, open, a) {
                let ratio = contrast(&colour, &bg);
                if ratio < 3.0 {
                    problems.push(format!(
                        "chart colour {colour} on {bg}: contrast {ratio:.2} < 3"
                    ));
                }
            } else if open.contains("bar") {
                problems.push("the chart has no bars".into());
            }
        }
        if !dom.contains("role=\"img\"") || !dom.contains("<title id=\"chart-title\"") {
            problems.push("the chart has no role=img and title".into());
        }
        if dom.contains("<script") {
            problems.push("the page has a script".into());
        }
    }
    problems
}

#[test]
fn every_scenario_report_in_every_language_shows_the_bills_totals_in_a_browser() {
    let chromium = chromium();
    let dir = tempfile::tempdir().unwrap();
    let shots = root().join("target/report-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    // (page, language, expected month totals, screenshot)
    let mut jobs: Vec<(PathBuf, Language, Vec<Decimal>, Option<PathBuf>)> = Vec::new();
    for name in SCENARIOS {
        let s = scenario(name);
        for (ci, c) in s.customers().into_iter().enumerate() {
            let expected = s.expected_totals(&c, oct());
            for lang in Language::ALL {
                let page = s.report(&c, oct(), Some(lang));
                let path = dir.path().join(format!("{name}-{c}-{lang}.html"));
                std::fs::write(&path, &page.html).unwrap();
                let shot = (ci == 0 && lang == s.book.contracts[&c].report.language)
                    .then(|| shots.join(format!("{name}-{c}-{lang}.png")));
                jobs.push((path, lang, expected.clone(), shot));
            }
        }
    }
    let started = std::time::Instant::now();
    let jobs = std::sync::Mutex::new(jobs.into_iter());
    let problems = std::sync::Mutex::new(Vec::new());
    let pages = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                loop {
                    let Some((path, lang, expected, shot)) = jobs.lock().unwrap().next() else {
                        break;
                    };
                    let dom = browse(&chromium, &path, &["--dump-dom".to_owned()]);
                    for p in check_page(&dom, lang, &expected) {
                        problems.lock().unwrap().push(format!(
                            "{}: {p}",
                            path.file_name().unwrap().to_string_lossy()
                        ));
                    }
                    if let Some(shot) = shot {
                        let _ = std::fs::remove_file(&shot);
                        browse(
                            &chromium,
                            &path,
                            &[
                                format!("--screenshot={}", shot.display()),
                                "--window-size=1000,2400".to_owned(),
                            ],
                        );
                        let png = std::fs::read(&shot).unwrap_or_default();
                        if !png.starts_with(b"\x89PNG") || png.len() < 10_000 {
                            problems
                                .lock()
                                .unwrap()
                                .push(format!("{}: no screenshot", shot.display()));
                        }
                    }
                    pages.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let problems = problems.into_inner().unwrap();
    eprintln!(
        "browser: {} pages loaded and checked in {:.1} s; screenshots in {}",
        pages.into_inner(),
        started.elapsed().as_secs_f64(),
        shots.display()
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_browser_check_catches_a_wrong_total_and_a_pale_chart() {
    // The checks themselves must be able to fail.
    let s = scenario("lv-it");
    let c = CustomerKey::new("riga-bakery");
    let page = s.report(&c, oct(), Some(Language::Lv));
    let expected = s.expected_totals(&c, oct());
    assert!(check_page(&page.html, Language::Lv, &expected).is_empty());
    let wrong: Vec<Decimal> = expected.iter().map(|d| d + Decimal::ONE).collect();
    assert!(!check_page(&page.html, Language::Lv, &wrong).is_empty());
    let pale = page.html.replace("<th scope=\"col\">", "<th>");
    assert!(!check_page(&pale, Language::Lv, &expected).is_empty());
    assert!(contrast("#1f5fa8", "#ffffff") >= 3.0 && contrast("#dddddd", "#ffffff") < 3.0);
    assert_eq!(
        amount_on_page("1\u{a0}234,50\u{a0}€"),
        "1234.50".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        amount_on_page("1.234,50 kr."),
        "1234.50".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        amount_on_page("SEK 1,234.50"),
        "1234.50".parse::<Decimal>().unwrap()
    );
    assert_eq!(
        amount_on_page("€-400.00"),
        "-400.00".parse::<Decimal>().unwrap()
    );
}

#[test]
fn the_balance_statement_matches_its_snapshot() {
    let s = scenario("itech-klippekort");
    let c = CustomerKey::new("nordhavn-arkitekter");
    let templates = report::templates(None).unwrap();
    let mut bills = BTreeMap::new();
    report::bill_months(&s.book, &s.tickets, &c, oct(), None, &mut bills).unwrap();
    let page = report::render(
        &templates,
        &s.book,
        &s.tickets,
        &bills,
        &c,
        oct(),
        None,
        true,
    )
    .unwrap();
    assert!(!page.html.contains("N-03"), "no ticket on the statement");
    insta::assert_snapshot!(
        "statement-itech-klippekort-nordhavn-arkitekter-2026-10",
        page.html
    );
}

#[test]
fn a_close_without_chromium_stores_html_reports_says_why_and_hands_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let tables = format!(
        r#"{samples}{drafts}[report]
chromium = "/nonexistent/chromium""#,
        samples = folder_source("samples", &scenarios().join("akte-sla")),
        drafts = folder_target("drafts", &dir.path().join("drafts")),
    );
    let mapping = examples().join("akte-sla.yaml");
    let cfg = write_config(dir.path(), &mapping, "drafts", &tables);
    let log = run_once_with(&cfg, "2026-11-02T12:00:00Z", &[]);
    assert!(
        log.contains("1 work report(s) stored, 0 with a PDF"),
        "{log}"
    );
    assert!(
        log.contains("report PDFs skipped: report.chromium `/nonexistent/chromium` is not a file"),
        "{log}"
    );
    let files = dir.path().join("out");
    succeeded(
        Command::new(env!("CARGO_BIN_EXE_contract-bridge"))
            .args([
                "report",
                "--stored",
                "--customer",
                "poznan-clinic",
                "--period",
                "2026-10",
                "--config",
            ])
            .arg(&cfg)
            .arg("--out")
            .arg(&files),
    );
    let html = std::fs::read_to_string(files.join("poznan-clinic-2026-10-pl.html")).unwrap();
    // What was stored at the close is the page of the bill.
    let s = scenario("akte-sla");
    let fresh = s.report(&CustomerKey::new("poznan-clinic"), oct(), None);
    assert_eq!(html, fresh.html);
    assert!(!files.join("poznan-clinic-2026-10-pl.pdf").exists());
}

/// The browser kept running prints every customer's October report of the
/// public scenarios, three at a time: every one a whole PDF, all from one
/// browser.
#[test]
fn the_pdf_pool_prints_every_report_from_one_browser() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut pages = Vec::new();
    for name in SCENARIOS {
        let s = scenario(name);
        for customer in s.book.contracts.keys() {
            pages.push(s.report(customer, oct(), None).html);
        }
    }
    assert!(pages.len() >= 10, "{}", pages.len());
    let pool = std::sync::Arc::new(contract_bridge::pdf::PdfPool::new(chromium(), 3));
    let pdfs: Vec<Vec<u8>> = runtime.block_on(async {
        let mut jobs = tokio::task::JoinSet::new();
        for (i, html) in pages.iter().cloned().enumerate() {
            let pool = pool.clone();
            jobs.spawn(async move { (i, pool.print(&html).await) });
        }
        let mut pdfs = vec![Vec::new(); pages.len()];
        while let Some(done) = jobs.join_next().await {
            let (i, pdf) = done.unwrap();
            pdfs[i] = pdf.unwrap_or_else(|e| panic!("page {i}: {e}"));
        }
        pdfs
    });
    for (i, pdf) in pdfs.iter().enumerate() {
        assert!(pdf.starts_with(b"%PDF"), "page {i}");
        assert!(pdf.len() > 2_000, "page {i}: {} bytes", pdf.len());
    }
    assert_eq!(pool.browsers_started(), 1);
}
