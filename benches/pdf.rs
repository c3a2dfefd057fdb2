//! Report PDFs a second: the browser kept running (`contract_bridge::pdf`)
//! with 1, 2 and 4 pages, against the way before it (one headless Chromium
//! started per PDF with `--print-to-pdf`, one after the other, as a close
//! did). The page is riga-bakery's October report of the lv-it sample.
//!
//!   cargo bench --bench pdf                 # 24 PDFs each way
//!   PDFS=100 CHROMIUM=/usr/bin/chromium cargo bench --bench pdf
//!
//! It prints a table; it asserts nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use contract_bridge::pdf::PdfPool;
use contract_bridge::report;

fn page() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let book = mapping::load(&root.join("mappings/examples/lv-it.yaml"))
        .unwrap_or_else(|d| panic!("{d}"))
        .book;
    let (tickets, _) =
        contract_bridge::export::read(&root.join("tests/fixtures/scenarios/lv-it/tickets.json"))
            .expect("the sample export");
    let customer = engine::ticket::CustomerKey::new("riga-bakery");
    let period = "2026-10".parse().expect("a month");
    let mut bills = BTreeMap::new();
    report::bill_months(&book, &tickets, &customer, period, None, &mut bills).expect("bills");
    let templates = report::templates(None).expect("templates");
    report::render(
        &templates, &book, &tickets, &bills, &customer, period, None, false,
    )
    .expect("the report")
    .html
}

/// The way before: a browser started for each PDF.
fn one_browser_each(chromium: &Path, html: &str, n: usize) {
    let dir = std::env::temp_dir().join(format!("cb-pdf-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let page = dir.join("report.html");
    std::fs::write(&page, html).expect("the page");
    for i in 0..n {
        let pdf = dir.join(format!("{i}.pdf"));
        let status = std::process::Command::new(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--no-pdf-header-footer",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg(format!("--print-to-pdf={}", pdf.display()))
            .arg(format!("file://{}", page.display()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("chromium");
        assert!(status.success() && pdf.exists(), "no PDF");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| report::chromium(Some(Path::new("chromium"))))
        .expect("a Chromium (CHROMIUM=/path, or chromium on PATH)");
    let n: usize = std::env::var("PDFS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let html = page();
    println!("{n} PDFs of a {} KiB report page", html.len() / 1024);
    println!("{:<42} {:>9} {:>11}", "how", "seconds", "PDFs/s");
    let started = Instant::now();
    one_browser_each(&chromium, &html, n);
    let s = started.elapsed().as_secs_f64();
    println!(
        "{:<42} {:>9.2} {:>11.2}",
        "a browser per PDF (before)",
        s,
        n as f64 / s
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    for pages in [1, 2, 4] {
        let pool = Arc::new(PdfPool::new(chromium.clone(), pages));
        let started = Instant::now();
        runtime.block_on(async {
            let mut jobs = tokio::task::JoinSet::new();
            for _ in 0..n {
                let (pool, html) = (pool.clone(), html.clone());
                jobs.spawn(async move { pool.print(&html).await });
            }
            while let Some(done) = jobs.join_next().await {
                let pdf = done.expect("a task").expect("a PDF");
                assert!(pdf.starts_with(b"%PDF"));
            }
        });
        let s = started.elapsed().as_secs_f64();
        println!(
            "{:<42} {:>9.2} {:>11.2}",
            format!("one browser, {pages} page(s), with its start"),
            s,
            n as f64 / s
        );
    }
}
