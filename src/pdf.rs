//! Report PDFs from one headless Chromium kept running, a bounded number of
//! pages at a time.
//!
//! Starting Chromium for each PDF cost about 1.2 s, nearly all of it the
//! browser's start; a close of thousands of customers printed one after the
//! other. Here the browser starts once (at the first PDF) and is driven over
//! the DevTools protocol on a pipe (`--remote-debugging-pipe`: commands on
//! its fd 3, answers on its fd 4, each a JSON text ended by NUL; `sh` maps
//! them onto the child's stdin and stdout, so no socket is opened). Each PDF
//! takes a page from the pool (at most `report.pdf_pages` at once), loads the
//! HTML from a file, and asks the page for `Page.printToPDF`; the page goes
//! back to the pool. A browser that exits, or a page that does not answer in
//! time, fails the PDFs in flight with a clear error, and the next PDF starts
//! a new browser.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{Semaphore, oneshot};

/// How long one DevTools command, or a page's load, may take.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
#[error("Chromium `{chromium}`: {failure}")]
pub struct PdfError {
    pub chromium: String,
    pub failure: Failure,
}

/// What went wrong with the browser or a page.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("no pipe to the browser")]
    NoPipe,
    #[error("the browser exited")]
    Exited,
    #[error("the PDF pool is closed")]
    Closed,
    /// A DevTools command the browser refused or answered unreadably.
    #[error("{method}: {message}")]
    Command { method: String, message: String },
    #[error("{method}: no answer in {} s", ANSWER_WITHIN.as_secs())]
    NoAnswer { method: String },
    #[error("the page did not load in {} s", ANSWER_WITHIN.as_secs())]
    NotLoaded,
    #[error("Page.printToPDF: not a PDF")]
    NotAPdf,
}

impl Failure {
    fn command(method: &str, message: impl std::fmt::Display) -> Failure {
        Failure::Command {
            method: method.to_owned(),
            message: message.to_string(),
        }
    }
}

/// One message of the DevTools protocol: an answer (`id`) or an event (`method`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    id: Option<u64>,
    error: Option<ProtocolError>,
    result: Option<Value>,
    method: Option<String>,
    session_id: Option<String>,
}

#[derive(Deserialize)]
struct ProtocolError {
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreatedTarget {
    target_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Attached {
    session_id: String,
}

#[derive(Deserialize)]
struct Printed {
    /// The PDF, base64.
    data: String,
}

/// The result of `method`, read as `T`.
fn result<T: serde::de::DeserializeOwned>(method: &str, v: Value) -> Result<T, Failure> {
    serde_json::from_value(v).map_err(|e| Failure::command(method, e))
}

/// Prints HTML pages to PDFs (A4 unless the page's CSS names a size, no
/// header or footer, backgrounds printed).
pub struct PdfPool {
    chromium: PathBuf,
    pages: Semaphore,
    browser: tokio::sync::Mutex<Option<Arc<Browser>>>,
    /// Browsers started so far (one unless one died).
    started: AtomicU64,
}

impl PdfPool {
    /// A pool printing at most `pages` PDFs at once with `chromium`.
    pub fn new(chromium: PathBuf, pages: usize) -> PdfPool {
        PdfPool {
            chromium,
            pages: Semaphore::new(pages.max(1)),
            browser: tokio::sync::Mutex::new(None),
            started: AtomicU64::new(0),
        }
    }

    /// How many browsers this pool started.
    pub fn browsers_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    fn fail(&self, failure: Failure) -> PdfError {
        PdfError {
            chromium: self.chromium.display().to_string(),
            failure,
        }
    }

    /// The PDF of `html`.
    pub async fn print(&self, html: &str) -> Result<Vec<u8>, PdfError> {
        let _permit = self
            .pages
            .acquire()
            .await
            .map_err(|_| self.fail(Failure::Closed))?;
        let browser = self.browser().await?;
        let page = match browser.idle.lock().ok().and_then(|mut idle| idle.pop()) {
            Some(page) => page,
            None => browser.open_page().await.map_err(|m| self.fail(m))?,
        };
        match browser.print(&page, html).await {
            Ok(pdf) => {
                if let Ok(mut idle) = browser.idle.lock() {
                    idle.push(page);
                }
                Ok(pdf)
            }
            Err(failure) => {
                // A page that failed is not used again.
                let _ = browser
                    .call("Target.closeTarget", json!({"targetId": page.target}), None)
                    .await;
                Err(self.fail(failure))
            }
        }
    }

    /// The running browser, started when there is none or it exited.
    async fn browser(&self) -> Result<Arc<Browser>, PdfError> {
        let mut slot = self.browser.lock().await;
        if let Some(b) = slot.as_ref()
            && !b.dead.load(Ordering::Relaxed)
        {
            return Ok(b.clone());
        }
        let b = Browser::start(&self.chromium).map_err(|m| self.fail(m))?;
        self.started.fetch_add(1, Ordering::Relaxed);
        *slot = Some(b.clone());
        Ok(b)
    }
}

/// A page of the browser: its target and the session attached to it.
struct Page {
    target: String,
    session: String,
}

type Answer = oneshot::Sender<Result<Value, String>>;

struct Browser {
    child: Mutex<Child>,
    commands: tokio::sync::Mutex<ChildStdin>,
    next: AtomicU64,
    /// Commands sent, by id, waiting for their answer.
    waiting: Arc<Mutex<HashMap<u64, Answer>>>,
    /// Pages waiting for their `Page.loadEventFired`, by session.
    loads: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>,
    dead: Arc<AtomicBool>,
    idle: Mutex<Vec<Page>>,
    /// The profile and the pages' HTML files; removed with the browser.
    dir: PathBuf,
    files: AtomicU64,
}

impl Browser {
    fn start(chromium: &Path) -> Result<Arc<Browser>, Failure> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "contract-bridge-pdf-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|source| Failure::Io {
            what: dir.display().to_string(),
            source,
        })?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec "$0" "$@" 3<&0 4>&1 0</dev/null 1>/dev/null"#)
            .arg(chromium)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--remote-debugging-pipe",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| Failure::Io {
                what: "start".into(),
                source,
            })?;
        let (Some(commands), Some(answers)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Failure::NoPipe);
        };
        let waiting: Arc<Mutex<HashMap<u64, Answer>>> = Arc::default();
        let loads: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>> = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        tokio::spawn(read_answers(
            BufReader::new(answers),
            waiting.clone(),
            loads.clone(),
            dead.clone(),
        ));
        Ok(Arc::new(Browser {
            child: Mutex::new(child),
            commands: tokio::sync::Mutex::new(commands),
            next: AtomicU64::new(0),
            waiting,
            loads,
            dead,
            idle: Mutex::new(Vec::new()),
            dir,
            files: AtomicU64::new(0),
        }))
    }

    /// Sends a command (to a page's session if given) and waits for its result.
    async fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<Value, Failure> {
        if self.dead.load(Ordering::Relaxed) {
            return Err(Failure::Exited);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .map_err(|_| Failure::command(method, "poisoned"))?
            .insert(id, tx);
        // The reader may have failed everything just before this insert.
        if self.dead.load(Ordering::Relaxed) {
            if let Ok(mut w) = self.waiting.lock() {
                w.remove(&id);
            }
            return Err(Failure::Exited);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| Failure::command(method, e))?;
        bytes.push(0);
        let sent = {
            let mut commands = self.commands.lock().await;
            commands.write_all(&bytes).await
        };
        if let Err(e) = sent {
            self.dead.store(true, Ordering::Relaxed);
            // A pipe that refuses the command is a browser gone.
            return Err(Failure::command(
                method,
                format!("the browser exited (its pipe: {e})"),
            ));
        }
        match tokio::time::timeout(ANSWER_WITHIN, rx).await {
            Ok(Ok(answer)) => answer.map_err(|e| Failure::command(method, e)),
            Ok(Err(_)) => Err(Failure::command(method, Failure::Exited)),
            Err(_) => {
                if let Ok(mut w) = self.waiting.lock() {
                    w.remove(&id);
                }
                Err(Failure::NoAnswer {
                    method: method.to_owned(),
                })
            }
        }
    }

    async fn open_page(&self) -> Result<Page, Failure> {
        const CREATE: &str = "Target.createTarget";
        const ATTACH: &str = "Target.attachToTarget";
        let created: CreatedTarget = result(
            CREATE,
            self.call(CREATE, json!({"url": "about:blank"}), None)
                .await?,
        )?;
        let target = created.target_id;
        let attached: Attached = result(
            ATTACH,
            self.call(ATTACH, json!({"targetId": target, "flatten": true}), None)
                .await?,
        )?;
        let session = attached.session_id;
        self.call("Page.enable", json!({}), Some(&session)).await?;
        Ok(Page { target, session })
    }

    async fn print(&self, page: &Page, html: &str) -> Result<Vec<u8>, Failure> {
        const PRINT: &str = "Page.printToPDF";
        let n = self.files.fetch_add(1, Ordering::Relaxed);
        let file = self.dir.join(format!("page-{n}.html"));
        tokio::fs::write(&file, html)
            .await
            .map_err(|source| Failure::Io {
                what: file.display().to_string(),
                source,
            })?;
        let printed = async {
            let (tx, loaded) = oneshot::channel();
            self.loads
                .lock()
                .map_err(|_| Failure::command("Page.navigate", "poisoned"))?
                .insert(page.session.clone(), tx);
            self.call(
                "Page.navigate",
                json!({"url": format!("file://{}", file.display())}),
                Some(&page.session),
            )
            .await?;
            match tokio::time::timeout(ANSWER_WITHIN, loaded).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Failure::Exited),
                Err(_) => return Err(Failure::NotLoaded),
            }
            let printed = self
                .call(
                    PRINT,
                    json!({
                        "printBackground": true,
                        "preferCSSPageSize": true,
                        "paperWidth": 8.27,
                        "paperHeight": 11.69,
                        "displayHeaderFooter": false
                    }),
                    Some(&page.session),
                )
                .await?;
            let printed: Printed = result(PRINT, printed)?;
            let pdf = base64::engine::general_purpose::STANDARD
                .decode(printed.data)
                .map_err(|e| Failure::command(PRINT, e))?;
            if !pdf.starts_with(b"%PDF") {
                return Err(Failure::NotAPdf);
            }
            Ok(pdf)
        }
        .await;
        let _ = tokio::fs::remove_file(&file).await;
        printed
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(mut child) = self.child.lock() {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Routes the browser's answers to their commands and load events to their
/// pages; at the pipe's end, fails everything still waiting.
async fn read_answers(
    mut answers: BufReader<tokio::process::ChildStdout>,
    waiting: Arc<Mutex<HashMap<u64, Answer>>>,
    loads: Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>,
    dead: Arc<AtomicBool>,
) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match answers.read_until(0, &mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if buf.last() == Some(&0) {
            buf.pop();
        }
        // Not a protocol message (a browser's stray output): not ours to read.
        let Ok(msg) = serde_json::from_slice::<Message>(&buf) else {
            continue;
        };
        if let Some(id) = msg.id {
            let tx = waiting.lock().ok().and_then(|mut w| w.remove(&id));
            if let Some(tx) = tx {
                let answer = match (msg.error, msg.result) {
                    (Some(e), _) => Err(e.message),
                    (None, Some(result)) => Ok(result),
                    (None, None) => Err("an answer with neither result nor error".to_owned()),
                };
                let _ = tx.send(answer);
            }
        } else if msg.method.as_deref() == Some("Page.loadEventFired")
            && let Some(session) = msg.session_id
        {
            let tx = loads.lock().ok().and_then(|mut l| l.remove(&session));
            if let Some(tx) = tx {
                let _ = tx.send(());
            }
        }
    }
    dead.store(true, Ordering::Relaxed);
    // Dropping the senders wakes every waiter with "the browser exited".
    if let Ok(mut w) = waiting.lock() {
        w.clear();
    }
    if let Ok(mut l) = loads.lock() {
        l.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "browser" that exits at once: the PDF fails with a message, and
    /// the next PDF starts another.
    #[tokio::test]
    async fn a_browser_that_exits_fails_the_pdf_and_the_next_starts_another() {
        let pool = PdfPool::new(PathBuf::from("/bin/false"), 2);
        let err = pool.print("<p>x</p>").await.unwrap_err();
        assert!(err.to_string().contains("/bin/false"), "{err}");
        assert!(err.to_string().contains("exited"), "{err}");
        let _ = pool.print("<p>x</p>").await.unwrap_err();
        assert_eq!(pool.browsers_started(), 2);
    }

    #[tokio::test]
    async fn a_missing_browser_is_named() {
        let pool = PdfPool::new(PathBuf::from("/nonexistent/chromium"), 1);
        let err = pool.print("<p>x</p>").await.unwrap_err();
        assert!(err.to_string().contains("/nonexistent/chromium"), "{err}");
    }
}
