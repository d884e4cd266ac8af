//! JSON-RPC 2.0 over a unix socket, one message per line. Transport only: it frames, parses and
//! validates messages, runs each request as its own task, and writes responses and notifications
//! through one bounded queue per connection (a slow reader slows the sandboxes writing to it, rather
//! than growing the runtime's memory). What the methods do lives in service.rs.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;

use crate::codes;
use crate::error::Error;

/// Largest message accepted; files for a run travel inline, base64.
pub const MAX_MESSAGE_BYTES: usize = 96 << 20;
const QUEUE_DEPTH: usize = 1024;

pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the transport needs from the service behind it.
pub trait Service: Send + Sync + 'static {
    fn call(self: Arc<Self>, conn: Arc<Connection>, method: String, params: Value) -> BoxFuture<Result<Value, Error>>;
    /// The peer went away: whatever it owned and nobody else can reach should stop.
    fn closed(&self, conn: &Connection);
}

/// The sending half of a connection, shared by every task working for that peer.
#[derive(Clone)]
pub struct Connection {
    pub id: u64,
    tx: mpsc::Sender<String>,
}

impl Connection {
    /// Queues a notification; false once the peer is gone.
    pub async fn notify(&self, method: &str, params: Value) -> bool {
        let msg = json!({ "jsonrpc": "2.0", "method": method, "params": params });
        self.tx.send(msg.to_string()).await.is_ok()
    }

    async fn respond(&self, id: Value, result: Result<Value, Error>) {
        let msg = match result {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(e) => json!({
                "jsonrpc": "2.0",
                "id": id,
                "error": { "code": e.code(), "message": e.to_string(), "data": e.data() }
            }),
        };
        let _ = self.tx.send(msg.to_string()).await;
    }

    async fn protocol_error(&self, id: Value, code: i32, message: String) {
        let msg = json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } });
        let _ = self.tx.send(msg.to_string()).await;
    }
}

/// Every open connection, for notifications that concern all peers (sandbox output and state).
#[derive(Default)]
pub struct Hub {
    conns: std::sync::Mutex<Vec<std::sync::Weak<Connection>>>,
}

impl Hub {
    fn add(&self, conn: &Arc<Connection>) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|c| c.strong_count() > 0);
        conns.push(Arc::downgrade(conn));
    }

    pub async fn broadcast(&self, method: &str, params: Value) {
        let live: Vec<Arc<Connection>> =
            self.conns.lock().unwrap_or_else(|p| p.into_inner()).iter().filter_map(std::sync::Weak::upgrade).collect();
        for c in live {
            c.notify(method, params.clone()).await;
        }
    }
}

pub async fn serve<S: Service>(listener: UnixListener, service: Arc<S>, hub: Arc<Hub>) {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let id = NEXT.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(handle(stream, id, service.clone(), hub.clone()));
            }
            Err(e) => {
                crate::log!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}

async fn handle<S: Service>(stream: UnixStream, id: u64, service: Arc<S>, hub: Arc<Hub>) {
    let (read, mut write) = stream.into_split();
    let (tx, mut rx) = mpsc::channel::<String>(QUEUE_DEPTH);
    let conn = Arc::new(Connection { id, tx });
    hub.add(&conn);
    let writer = tokio::spawn(async move {
        while let Some(mut line) = rx.recv().await {
            line.push('\n');
            if write.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    });
    let mut reader = BufReader::with_capacity(64 * 1024, read);
    let mut buf = Vec::new();
    loop {
        match read_message(&mut reader, &mut buf, MAX_MESSAGE_BYTES).await {
            Ok(None) | Err(_) => break,
            Ok(Some(Err(size))) => {
                let msg = format!("message of {size}+ bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit");
                conn.protocol_error(Value::Null, codes::PAYLOAD_TOO_LARGE, msg).await;
            }
            Ok(Some(Ok(()))) => dispatch(&buf, &conn, &service).await,
        }
    }
    service.closed(&conn);
    drop(conn);
    let _ = writer.await;
}

async fn dispatch<S: Service>(line: &[u8], conn: &Arc<Connection>, service: &Arc<S>) {
    if line.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    let value: Value = match serde_json::from_slice(line) {
        Ok(v) => v,
        Err(e) => return conn.protocol_error(Value::Null, codes::PARSE_ERROR, format!("invalid JSON: {e}")).await,
    };
    let Value::Object(msg) = value else {
        let m = "expected one JSON-RPC request object per line (batches are not supported on this socket)";
        return conn.protocol_error(Value::Null, codes::INVALID_REQUEST, m.into()).await;
    };
    let id = msg.get("id").cloned();
    if msg.contains_key("result") || msg.contains_key("error") {
        return; // a response: the runtime sends no requests, so there is nothing waiting for it
    }
    let reply_id = id.clone().unwrap_or(Value::Null);
    if msg.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return conn.protocol_error(reply_id, codes::INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"".into()).await;
    }
    if !matches!(id, None | Some(Value::Null | Value::Number(_) | Value::String(_))) {
        return conn
            .protocol_error(Value::Null, codes::INVALID_REQUEST, "\"id\" must be a string or number".into())
            .await;
    }
    let Some(method) = msg.get("method").and_then(Value::as_str).map(String::from) else {
        return conn.protocol_error(reply_id, codes::INVALID_REQUEST, "\"method\" must be a string".into()).await;
    };
    let params = msg.get("params").cloned().unwrap_or(Value::Null);
    if !matches!(params, Value::Null | Value::Object(_) | Value::Array(_)) {
        return conn
            .protocol_error(reply_id, codes::INVALID_REQUEST, "\"params\" must be an object or array".into())
            .await;
    }
    let Some(id) = id else {
        return; // notifications: the runtime defines none it acts on
    };
    let (conn, service) = (conn.clone(), service.clone());
    tokio::spawn(async move {
        let result = service.call(conn.clone(), method, params).await;
        conn.respond(id, result).await;
    });
}

/// Reads one line into `buf` (without the newline). `Ok(None)` at end of stream; `Some(Err(n))` when
/// the line was longer than `max` (it is skipped up to its newline, so the stream stays usable).
async fn read_message<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<Result<(), usize>>> {
    buf.clear();
    let mut oversized = 0usize;
    loop {
        let avail = r.fill_buf().await?;
        if avail.is_empty() {
            return Ok(if buf.is_empty() && oversized == 0 { None } else { Some(Ok(())) });
        }
        let (chunk, done) = match avail.iter().position(|b| *b == b'\n') {
            Some(i) => (&avail[..i], Some(i + 1)),
            None => (avail, None),
        };
        if oversized > 0 || buf.len() + chunk.len() > max {
            oversized += buf.len() + chunk.len();
            buf.clear();
        } else {
            buf.extend_from_slice(chunk);
        }
        let used = done.unwrap_or(avail.len());
        r.consume(used);
        if done.is_some() {
            return Ok(Some(if oversized > 0 { Err(oversized) } else { Ok(()) }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_framed_and_oversized_ones_skipped() {
        let data: &[u8] = b"{\"a\":1}\nxxxxxxxxxxxxxxxxxxxx\n{\"b\":2}\ntail";
        let mut r = BufReader::with_capacity(4, data);
        let mut buf = Vec::new();
        assert!(matches!(read_message(&mut r, &mut buf, 10).await.unwrap(), Some(Ok(()))));
        assert_eq!(buf, b"{\"a\":1}");
        assert!(matches!(read_message(&mut r, &mut buf, 10).await.unwrap(), Some(Err(n)) if n >= 20));
        assert!(matches!(read_message(&mut r, &mut buf, 10).await.unwrap(), Some(Ok(()))));
        assert_eq!(buf, b"{\"b\":2}");
        assert!(matches!(read_message(&mut r, &mut buf, 10).await.unwrap(), Some(Ok(()))));
        assert_eq!(buf, b"tail");
        assert!(read_message(&mut r, &mut buf, 10).await.unwrap().is_none());
    }
}
