//! The gate: who may open a connection to this device, decided right after the TLS handshake
//! and before the application reads a byte.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use iroh::EndpointId;
use iroh::endpoint::{AfterHandshakeOutcome, Connection, EndpointHooks, Side, VarInt};

use crate::{LINK_ALPN, PAIR_ALPN, SYNC_ALPN, close_code};

/// Admits incoming connections: on [`SYNC_ALPN`] only from allowed endpoint ids, on
/// [`PAIR_ALPN`] only while an invite is open, and nothing else.
///
/// Outgoing connections pass: this device chose whom to dial, and TLS proves it reached them.
///
/// Cloning shares the state, so the allowed set can change while the endpoint runs (pairing adds
/// the partner, unpairing removes them).
#[derive(Debug, Clone, Default)]
pub struct Gate {
    inner: Arc<GateState>,
}

#[derive(Debug, Default)]
struct GateState {
    allowed: RwLock<HashSet<EndpointId>>,
    open_invites: AtomicUsize,
}

/// Keeps the pairing ALPN open while it lives; dropping it closes it again, even when the
/// invite ends with an error or is cancelled.
#[derive(Debug)]
#[must_use = "the invite closes when the guard is dropped"]
pub struct InviteGuard {
    gate: Gate,
}

impl Drop for InviteGuard {
    fn drop(&mut self) {
        self.gate.inner.open_invites.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// A gate that admits nobody yet.
    pub fn new() -> Self {
        Gate::default()
    }

    /// A gate that admits these endpoints on the sync protocol.
    pub fn with_allowed(ids: impl IntoIterator<Item = EndpointId>) -> Self {
        let gate = Gate::new();
        gate.set_allowed(ids);
        gate
    }

    /// Admits `id` on the sync protocol from now on.
    pub fn allow(&self, id: EndpointId) {
        self.write().insert(id);
    }

    /// Stops admitting `id`; connections already open are not touched. Returns whether it was
    /// allowed.
    pub fn revoke(&self, id: &EndpointId) -> bool {
        self.write().remove(id)
    }

    /// Replaces the whole allowed set.
    pub fn set_allowed(&self, ids: impl IntoIterator<Item = EndpointId>) {
        let mut allowed = self.write();
        allowed.clear();
        allowed.extend(ids);
    }

    /// Whether `id` may connect on the sync protocol.
    pub fn is_allowed(&self, id: &EndpointId) -> bool {
        self.inner
            .allowed
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(id)
    }

    /// Opens the pairing protocol until the returned guard is dropped.
    pub fn open_invite(&self) -> InviteGuard {
        self.inner.open_invites.fetch_add(1, Ordering::SeqCst);
        InviteGuard { gate: self.clone() }
    }

    /// Whether an invite is open.
    pub fn is_invite_open(&self) -> bool {
        self.inner.open_invites.load(Ordering::SeqCst) > 0
    }

    /// The decision for an incoming connection: `Ok` to admit, or the close reason.
    pub fn admits(&self, alpn: &[u8], remote: &EndpointId) -> Result<(), &'static str> {
        if alpn == SYNC_ALPN {
            if self.is_allowed(remote) {
                Ok(())
            } else {
                Err("not paired")
            }
        } else if alpn == PAIR_ALPN || alpn == LINK_ALPN {
            if self.is_invite_open() {
                Ok(())
            } else {
                Err("no invite open")
            }
        } else {
            Err("unknown protocol")
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashSet<EndpointId>> {
        // A panic elsewhere while holding the lock leaves a set that is still consistent.
        self.inner
            .allowed
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl EndpointHooks for Gate {
    async fn after_handshake<'a>(&'a self, conn: &'a Connection) -> AfterHandshakeOutcome {
        if conn.side() == Side::Client {
            return AfterHandshakeOutcome::accept();
        }
        match self.admits(conn.alpn(), &conn.remote_id()) {
            Ok(()) => AfterHandshakeOutcome::accept(),
            Err(reason) => {
                tracing::debug!(
                    remote = %conn.remote_id().fmt_short(),
                    alpn = %String::from_utf8_lossy(conn.alpn()),
                    reason,
                    "refused a connection"
                );
                AfterHandshakeOutcome::Reject {
                    error_code: VarInt::from_u32(close_code::NOT_ALLOWED),
                    reason: reason.as_bytes().to_vec(),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use iroh::SecretKey;

    use super::*;

    fn id(n: u8) -> EndpointId {
        SecretKey::from_bytes(&[n; 32]).public()
    }

    #[test]
    fn sync_needs_an_allowed_id_and_pairing_an_open_invite() {
        let gate = Gate::new();
        assert_eq!(gate.admits(SYNC_ALPN, &id(1)), Err("not paired"));
        assert_eq!(gate.admits(PAIR_ALPN, &id(1)), Err("no invite open"));
        assert_eq!(gate.admits(b"other/1", &id(1)), Err("unknown protocol"));

        let shared = gate.clone();
        shared.allow(id(1));
        assert_eq!(gate.admits(SYNC_ALPN, &id(1)), Ok(()));
        assert_eq!(gate.admits(SYNC_ALPN, &id(2)), Err("not paired"));

        {
            let _invite = gate.open_invite();
            assert_eq!(gate.admits(PAIR_ALPN, &id(2)), Ok(()));
        }
        assert_eq!(gate.admits(PAIR_ALPN, &id(2)), Err("no invite open"));

        assert!(gate.revoke(&id(1)));
        assert_eq!(gate.admits(SYNC_ALPN, &id(1)), Err("not paired"));
        gate.set_allowed([id(3)]);
        assert!(gate.is_allowed(&id(3)));
    }
}
