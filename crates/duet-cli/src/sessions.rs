//! The sessions one process runs with each device, so that two devices hold one session.
//!
//! Two devices often dial each other at nearly the same moment (a `serve` that just started
//! pushes while the partner's `sync` dials it). A process that already runs a session the other
//! device dialed does not dial it as well: the dial waits for that session and counts it as its
//! own. A device that dials again has lost its earlier session (it was killed, its network went
//! away), so its new connection replaces the old one. Two dials that cross, each before the
//! other arrived, leave one connection each way: both devices close the one the greater id
//! dialed ([`CROSSED_WINDOW`]). See `docs/protocol.md`, "Sessions between two devices".

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iroh::EndpointId;
use iroh::endpoint::Connection;

struct Running {
    token: u64,
    conn: Option<Connection>,
    /// When its connection was established.
    since: Option<Instant>,
    /// Closed by this process because the two devices' dials crossed (see [`CROSSED_WINDOW`]).
    crossed: bool,
}

/// Two connections between the same two devices, one dialed by each, established within this
/// long of each other, crossed: each device dialed before the other's dial arrived. Both
/// devices then close the one dialed by the device with the greater id, and one session runs.
/// Past this window, the older connection is more likely a dead one (its process was killed)
/// than a twin, so both run, as before.
pub const CROSSED_WINDOW: Duration = Duration::from_secs(3);

#[derive(Default)]
struct Inner {
    /// This device's id, for the crossing rule.
    me: Option<EndpointId>,
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
        let since = conn.as_ref().map(|_| Instant::now());
        self.running.insert(
            (remote, outgoing),
            Running {
                token,
                conn,
                since,
                crossed: false,
            },
        );
        token
    }

    /// The connection with `remote` in direction `outgoing` was just established: if the other
    /// direction's was too, moments ago, the two crossed and the one dialed by the device with
    /// the greater id is closed. True if that is this one.
    fn settle_crossing(&mut self, remote: EndpointId, outgoing: bool) -> bool {
        let Some(me) = self.me else { return false };
        let twin_is_fresh = self
            .running
            .get(&(remote, !outgoing))
            .and_then(|r| r.since.filter(|_| r.conn.is_some()))
            .is_some_and(|since| since.elapsed() < CROSSED_WINDOW);
        if !twin_is_fresh {
            return false;
        }
        // Keep what the smaller id dialed: my outgoing if I am the smaller.
        let close_outgoing = me.as_bytes() > remote.as_bytes();
        let loser = self
            .running
            .get_mut(&(remote, close_outgoing))
            .expect("both directions are running");
        loser.crossed = true;
        if let Some(conn) = &loser.conn {
            conn.close(duet_net::close_code::CROSSED.into(), b"crossed");
        }
        close_outgoing == outgoing
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
    /// The register of a process whose endpoint is `me`.
    pub fn new(me: EndpointId) -> Sessions {
        let sessions = Sessions::default();
        sessions.lock().me = Some(me);
        sessions
    }

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

    /// The dial `token` connected. False if it crossed a connection `remote` dialed to this
    /// device and was closed for it: the caller waits for that session instead.
    pub fn dialed(&self, remote: EndpointId, token: u64, conn: &Connection) -> bool {
        let mut inner = self.lock();
        match inner.running.get_mut(&(remote, true)) {
            Some(r) if r.token == token => {
                r.conn = Some(conn.clone());
                r.since = Some(Instant::now());
            }
            _ => return true,
        }
        !inner.settle_crossing(remote, true)
    }

    /// A connection from `remote` arrived: its session's token, or `None` if it crossed this
    /// device's own dial to `remote` and was closed for it. An earlier session the same device
    /// dialed is closed: the device has given up on it.
    pub fn admit(&self, remote: EndpointId, conn: &Connection) -> Option<u64> {
        let mut inner = self.lock();
        if let Some(old) = inner
            .running
            .get(&(remote, false))
            .and_then(|r| r.conn.as_ref())
        {
            old.close(duet_net::close_code::BUSY.into(), b"superseded");
        }
        let token = inner.register(remote, false, Some(conn.clone()));
        if inner.settle_crossing(remote, false) {
            inner.running.remove(&(remote, false));
            return None;
        }
        Some(token)
    }

    /// Whether session `token` with `remote` was closed, here or by the other device, because
    /// the two devices' dials crossed: not a failure, the twin session stands for it.
    pub fn lost_crossing(
        &self,
        remote: EndpointId,
        outgoing: bool,
        token: u64,
        conn: &Connection,
    ) -> bool {
        let closed_here = self
            .lock()
            .running
            .get(&(remote, outgoing))
            .is_some_and(|r| r.token == token && r.crossed);
        closed_here
            || conn
                .close_reason()
                .is_some_and(|reason| duet_net::closed_as_crossed(&reason))
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
    /// [`Sessions::completed`] said before). True if one has; false at once when none with
    /// `remote` is under way any more (the one waited for failed: the caller dials again).
    pub async fn wait_completed(&self, remote: EndpointId, since: u64, max: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let notified = self.changed.notified();
            if self.completed(remote) > since {
                return true;
            }
            let now = tokio::time::Instant::now();
            let under_way = {
                let inner = self.lock();
                [true, false]
                    .iter()
                    .any(|out| inner.running.contains_key(&(remote, *out)))
            };
            if now >= deadline || !under_way {
                return false;
            }
            let _ =
                tokio::time::timeout((deadline - now).min(Duration::from_secs(1)), notified).await;
        }
    }
}
