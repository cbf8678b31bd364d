//! One session per pair of devices at a time, whichever of them dialed.
//!
//! Two devices often dial each other at the same moment (a `serve` that just started pushes
//! while the partner's `sync` dials it). Each process keeps a register of the session it runs
//! with each device and applies one rule, the same on both sides, so that both keep the same
//! connection: when a device is dialing (or already in a session it dialed) and the other side's
//! dial arrives, the connection dialed by the device with the smaller id stays; the other is
//! closed with [`DUPLICATE`](duet_net::close_code::DUPLICATE). The side whose dial lost waits for
//! the session that stayed and counts it as its own (`docs/protocol.md`, "One session per pair").

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iroh::EndpointId;
use iroh::endpoint::Connection;

struct Running {
    token: u64,
    outgoing: bool,
    conn: Option<Connection>,
}

#[derive(Default)]
struct Inner {
    next: u64,
    running: HashMap<EndpointId, Running>,
    /// Sessions with each device that completed, counted.
    completed: HashMap<EndpointId, u64>,
}

/// Close a connection that lost to its twin (the session runs on the other).
pub fn close_duplicate(conn: &Connection) {
    conn.close(duet_net::close_code::DUPLICATE.into(), b"duplicate");
}

impl Inner {
    /// Record the session with `remote` that starts now, in place of any other; its token.
    fn register(&mut self, remote: EndpointId, outgoing: bool, conn: Option<Connection>) -> u64 {
        self.next += 1;
        let token = self.next;
        let running = Running {
            token,
            outgoing,
            conn,
        };
        self.running.insert(remote, running);
        token
    }
}

/// The register of one process's sessions (cheap to clone: shared).
#[derive(Clone)]
pub struct Sessions {
    me: EndpointId,
    inner: Arc<Mutex<Inner>>,
    changed: Arc<tokio::sync::Notify>,
}

/// What to do with a dial's connection.
pub enum Dial {
    /// Go on: this is the session with the device (`token` ends it).
    Run(u64),
    /// A session with the device (dialed by it) runs or won: wait for it.
    Yield,
}

impl Sessions {
    pub fn new(me: EndpointId) -> Sessions {
        Sessions {
            me,
            inner: Arc::default(),
            changed: Arc::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any session is under way.
    pub fn any_running(&self) -> bool {
        self.lock().running.values().any(|r| r.conn.is_some())
    }

    /// How many sessions with `remote` have completed so far.
    pub fn completed(&self, remote: EndpointId) -> u64 {
        self.lock().completed.get(&remote).copied().unwrap_or(0)
    }

    /// About to dial `remote`: [`Dial::Yield`] when a session with it already runs.
    pub fn begin_dial(&self, remote: EndpointId) -> Dial {
        let mut inner = self.lock();
        if inner.running.contains_key(&remote) {
            return Dial::Yield;
        }
        Dial::Run(inner.register(remote, true, None))
    }

    /// The dial `token` connected. False when meanwhile the other side's dial won: the caller
    /// closes `conn` and yields.
    pub fn dialed(&self, remote: EndpointId, token: u64, conn: &Connection) -> bool {
        let mut inner = self.lock();
        match inner.running.get_mut(&remote) {
            Some(r) if r.token == token => {
                r.conn = Some(conn.clone());
                true
            }
            _ => false,
        }
    }

    /// A connection from `remote` arrived. `Some(token)`: run its session. `None`: this side's
    /// own dial stays (this device's id is the smaller); the caller closes `conn` as a duplicate.
    /// A session it replaces (an earlier one from the same device, which gave up on it, or this
    /// side's own dial, which lost) is closed here.
    pub fn admit(&self, remote: EndpointId, conn: &Connection) -> Option<u64> {
        let mut inner = self.lock();
        if let Some(r) = inner.running.get(&remote) {
            if r.outgoing && self.me < remote {
                return None;
            }
            if let Some(old) = &r.conn {
                if r.outgoing {
                    close_duplicate(old);
                } else {
                    old.close(duet_net::close_code::BUSY.into(), b"superseded");
                }
            }
        }
        Some(inner.register(remote, false, Some(conn.clone())))
    }

    /// Session `token` with `remote` ended, `ok` if it completed.
    pub fn end(&self, remote: EndpointId, token: u64, ok: bool) {
        let mut inner = self.lock();
        if inner.running.get(&remote).is_some_and(|r| r.token == token) {
            inner.running.remove(&remote);
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
            let idle = !self.lock().running.contains_key(&remote);
            // Nothing runs and nothing completed: give the other side's dial a moment to arrive.
            let wait = if idle {
                Duration::from_millis(100)
            } else {
                Duration::from_secs(1)
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return false;
            }
            let _ = tokio::time::timeout(wait.min(deadline - now), notified).await;
        }
    }
}
