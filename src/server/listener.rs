//! The listener under the routes: a long accept queue, HTTP/1.1 with read
//! deadlines on headers and bodies, an idle timeout, and a cap on the
//! connections served at once past which new ones are shed (they may still
//! ask `/healthz`) rather than starving the health check.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;

use crate::metrics::Connections;

/// A listener on `address` whose queue of connections not yet accepted is
/// long (4,096, or the system's cap): a burst of connections waits there
/// instead of half-opened connections being dropped.
pub async fn listen(address: &str) -> std::io::Result<tokio::net::TcpListener> {
    let mut last = None;
    for addr in tokio::net::lookup_host(address).await? {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        match socket.bind(addr).and_then(|()| socket.listen(4096)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, "names no address")
    }))
}

/// The listener's limits (`[http]`): see [`crate::settings::HttpSettings`].
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read: std::time::Duration,
    pub body_read: std::time::Duration,
    pub idle: std::time::Duration,
    pub max_connections: usize,
}

impl Limits {
    pub fn of(h: &crate::settings::HttpSettings) -> Limits {
        let secs = |s: f64| std::time::Duration::from_secs_f64(s.max(0.001));
        Limits {
            header_read: secs(h.header_read_timeout_secs),
            body_read: secs(h.body_read_timeout_secs),
            idle: secs(h.idle_timeout_secs),
            max_connections: h.max_connections.max(1),
        }
    }
}

/// Counts one in a counter for as long as it lives.
struct Held(Arc<std::sync::atomic::AtomicUsize>);

impl Held {
    fn take(count: &Arc<std::sync::atomic::AtomicUsize>) -> Held {
        count.fetch_add(1, Ordering::SeqCst);
        Held(count.clone())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `app` on `listener` until `stop` turns true, within `limits`:
/// HTTP/1.1 with a header read timeout (hyper's), a deadline on each
/// request body, an idle timeout on kept-alive connections, and at most
/// `max_connections` served at once. Past that many, as many again are
/// shed — each answers `/healthz` or 503 and is closed within half a
/// second — so that a flood of idle or trickling clients cannot starve the
/// health check; past that, the oldest shed connection is closed for each
/// new one, which bounds the daemon's file descriptors.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    counts: Arc<Connections>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    use std::sync::atomic::AtomicUsize;
    let served = Arc::new(AtomicUsize::new(0));
    let mut connections = tokio::task::JoinSet::new();
    let mut last_accept_error = None::<std::time::Instant>;
    let mut shed_queue = std::collections::VecDeque::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors (EMFILE) and the like: say so
                    // once in a while, and let the timeouts free some.
                    if last_accept_error.is_none_or(|t| t.elapsed().as_secs() >= 10) {
                        tracing::warn!("HTTP: cannot accept a connection: {e}");
                        last_accept_error = Some(std::time::Instant::now());
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        // Reap finished connection tasks as we go.
        while connections.try_join_next().is_some() {}
        if served.load(Ordering::SeqCst) < limits.max_connections {
            let held = Held::take(&served);
            let counts = counts.clone();
            let open = counts.open.fetch_add(1, Ordering::Relaxed) + 1;
            counts.peak.fetch_max(open, Ordering::Relaxed);
            connections.spawn(serve_connection(
                stream,
                app.clone(),
                limits,
                stop.clone(),
                (held, counts),
            ));
        } else {
            // Shed. Past as many again, the oldest shed connection is
            // closed for the newest: a flood of silent connections then
            // cannot keep out a health check, which speaks at once.
            shed_queue.retain(|h: &tokio::task::AbortHandle| !h.is_finished());
            if shed_queue.len() >= limits.max_connections
                && let Some(oldest) = shed_queue.pop_front()
            {
                oldest.abort();
                counts.refused.fetch_add(1, Ordering::Relaxed);
            }
            counts.shed.fetch_add(1, Ordering::Relaxed);
            shed_queue.push_back(connections.spawn(shed(stream)));
        }
    }
    // The stop: connections finish their request in hand (each was told).
    while connections.join_next().await.is_some() {}
}

/// Resolves when the stop is given (its borrow of the flag ends inside).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

const HEALTHY: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n";
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\nretry-after: 1\r\ncontent-length: 5\r\nconnection: close\r\n\r\nbusy\n";

/// The answer to a request head past every limit: `/healthz` 200, anything else 503.
fn shed_answer(head: &[u8]) -> &'static [u8] {
    if head.starts_with(b"GET /healthz ") || head.starts_with(b"GET /healthz?") {
        HEALTHY
    } else {
        BUSY
    }
}

/// An answer in hand to a connection past `max_connections`; the
/// connection is closed either way, within half a second.
async fn shed(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut head = [0u8; 2048];
    let mut n = 0;
    // A health checker sends its request as soon as it connects.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(500);
    // The whole head is read: closing on unread bytes would reset the
    // connection, and the client could lose the answer.
    while n < head.len() && !head[..n].windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, stream.read(&mut head[n..])).await {
            Ok(Ok(read)) if read > 0 => n += read,
            _ => break,
        }
    }
    if n == 0 {
        return;
    }
    let _ = tokio::time::timeout_at(deadline, async {
        stream.write_all(shed_answer(&head[..n])).await?;
        stream.shutdown().await
    })
    .await;
}

/// One connection served by hyper within the limits.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    limits: Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
    held: (Held, Arc<Connections>),
) {
    use std::sync::atomic::AtomicUsize;
    use tower::ServiceExt;
    let activity = Arc::new(AtomicU64::new(0));
    let started = tokio::time::Instant::now();
    let io = hyper_util::rt::TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
        started,
    });
    let in_flight = Arc::new(AtomicUsize::new(0));
    let requests = in_flight.clone();
    // A body past its deadline ends the connection: hyper would otherwise
    // keep reading what the client trickles after the answer.
    let late = Arc::new(tokio::sync::Notify::new());
    let late_body = late.clone();
    let service =
        hyper::service::service_fn(move |request: axum::http::Request<hyper::body::Incoming>| {
            let app = app.clone();
            let busy = Held::take(&requests);
            let late = late_body.clone();
            async move {
                let request = request
                    .map(|body| axum::body::Body::new(Deadline::new(body, limits.body_read, late)));
                let response = app.oneshot(request).await;
                drop(busy);
                response
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    // After a late body: the answer gets a moment to leave, then the socket is dropped.
    let mut drop_at = None::<tokio::time::Instant>;
    loop {
        tokio::select! {
            _ = connection.as_mut() => break,
            _ = late.notified(), if drop_at.is_none() => {
                connection.as_mut().graceful_shutdown();
                closing = true;
                drop_at = Some(tokio::time::Instant::now() + std::time::Duration::from_millis(200));
            }
            _ = tokio::time::sleep_until(drop_at.unwrap_or_else(tokio::time::Instant::now)), if drop_at.is_some() => break,
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)), if !closing => {
                let quiet = started.elapsed().as_millis() as u64
                    - activity.load(Ordering::Relaxed).min(started.elapsed().as_millis() as u64);
                if in_flight.load(Ordering::SeqCst) == 0
                    && quiet >= limits.idle.as_millis() as u64
                {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = stopped(&mut stop), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    held.1.open.fetch_sub(1, Ordering::Relaxed);
    drop(held.0);
}

/// A socket that notes when it last moved a byte (milliseconds after `started`).
struct Tracked {
    inner: tokio::net::TcpStream,
    activity: Arc<AtomicU64>,
    started: tokio::time::Instant,
}

impl Tracked {
    fn touch(&self) {
        self.activity
            .store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl tokio::io::AsyncRead for Tracked {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.touch();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Tracked {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let polled = std::pin::Pin::new(&mut this.inner).poll_write(cx, data);
        if matches!(polled, std::task::Poll::Ready(Ok(n)) if n > 0) {
            this.touch();
        }
        polled
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request body that must have arrived whole by a deadline (a client
/// trickling it byte by byte would otherwise hold its connection forever).
struct Deadline<B> {
    inner: B,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    limit: std::time::Duration,
    /// Told when the deadline passed.
    late: Arc<tokio::sync::Notify>,
}

impl<B> Deadline<B> {
    fn new(inner: B, limit: std::time::Duration, late: Arc<tokio::sync::Notify>) -> Deadline<B> {
        Deadline {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
            late,
        }
    }
}

impl<B> http_body::Body for Deadline<B>
where
    B: http_body::Body<Data = axum::body::Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            return std::task::Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.late.notify_one();
            return std::task::Poll::Ready(Some(Err(format!(
                "the request body did not arrive within {} s (http.body_read_timeout_secs)",
                this.limit.as_secs_f64()
            )
            .into())));
        }
        std::task::Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
