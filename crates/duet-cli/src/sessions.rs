//! The sessions one process runs with each device, so that it does not start a second one.
//!
//! Two devices often dial each other at nearly the same moment (a `serve` that just started
//! pushes while the partner's `sync` dials it). A process that already runs a session the other
//! device dialed does not dial it as well: the dial waits for that session and counts it as its
//! own. A connection is never refused for this: a device that dials again has lost its earlier
//! session (it was killed, its network went away), so its new connection replaces the old one.
//! Two dials that cross, each before the other arrived, still make two sessions side by side
//! (on a first sync both may carry the whole journal). See `docs/protocol.md`, "Sessions between
//! two devices".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::EndpointId;
use iroh::endpoint::Connection;

struct Running {
    token: u64,
    conn: Option<Connection>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    /// Per device and direction (true: this process dialed), the session under way.
    running: HashMap<(EndpointId, bool), Running>,
    /// Sessions with each device that completed, counted.
    completed: HashMap<EndpointId, u64>,
}

impl Inner {
    /// Record the session with `remote` that starts now, in place of any other in the same
    /// direction; its token.
    fn register(&mut self, remote: EndpointId, outgoing: bool, conn: Option<Connection>) -> u64 {
        self.next += 1;
        let token = self.next;
        self.running
            .insert((remote, outgoing), Running { token, conn });
        token
    }
}

/// The register of one process's sessions (cheap to clone: shared).
#[derive(Clone, Default)]
pub struct Sessions {
    inner: Arc<Mutex<Inner>>,
    changed: Arc<tokio::sync::Notify>,
}

/// Whether to dial.
pub enum Dial {
    /// Go on (`token` ends the session).
    Run(u64),
    /// The device dialed this one and that session is under way: wait for it.
    Yield,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any session is under way.
    pub fn any_running(&self) -> bool {
        self.lock().running.values().any(|r| r.conn.is_some())
    }

    /// Resolves when a session next ends.
    pub async fn ended(&self) {
        self.changed.notified().await
    }

    /// How many sessions with `remote` have completed so far.
    pub fn completed(&self, remote: EndpointId) -> u64 {
        self.lock().completed.get(&remote).copied().unwrap_or(0)
    }

    /// About to dial `remote`.
    pub fn begin_dial(&self, remote: EndpointId) -> Dial {
        let mut inner = self.lock();
        if inner.running.contains_key(&(remote, false)) {
            return Dial::Yield;
        }
        Dial::Run(inner.register(remote, true, None))
    }

    /// The dial `token` connected.
    pub fn dialed(&self, remote: EndpointId, token: u64, conn: &Connection) {
        let mut inner = self.lock();
        if let Some(r) = inner.running.get_mut(&(remote, true))
            && r.token == token
        {
            r.conn = Some(conn.clone());
        }
    }

    /// A connection from `remote` arrived: its session's token. An earlier session the same
    /// device dialed is closed: the device has given up on it.
    pub fn admit(&self, remote: EndpointId, conn: &Connection) -> u64 {
        let mut inner = self.lock();
        if let Some(old) = inner
            .running
            .get(&(remote, false))
            .and_then(|r| r.conn.as_ref())
        {
            old.close(duet_net::close_code::BUSY.into(), b"superseded");
        }
        inner.register(remote, false, Some(conn.clone()))
    }

    /// Session `token` with `remote` (dialed by this process if `outgoing`) ended, `ok` if it
    /// completed.
    pub fn end(&self, remote: EndpointId, outgoing: bool, token: u64, ok: bool) {
        let mut inner = self.lock();
        if inner
            .running
            .get(&(remote, outgoing))
            .is_some_and(|r| r.token == token)
        {
            inner.running.remove(&(remote, outgoing));
        }
        if ok {
            *inner.completed.entry(remote).or_default() += 1;
        }
        drop(inner);
        self.changed.notify_waiters();
    }

    /// Wait, at most `max`, until a session with `remote` has completed since `since` (what
    /// [`Sessions::completed`] said before). True if one has.
    pub async fn wait_completed(&self, remote: EndpointId, since: u64, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let notified = self.changed.notified();
            if self.completed(remote) > since {
                return true;
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let _ =
                tokio::time::timeout((deadline - now).min(Duration::from_secs(1)), notified).await;
        }
    }
}
