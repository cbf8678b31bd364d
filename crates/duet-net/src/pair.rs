//! Pairing over the network: drives `duet_core::pairing`'s state machines over one
//! bidirectional stream on [`PAIR_ALPN`], one frame per message.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use duet_core::pairing::{
    Abort, Confirm, Invitation, Inviter, Joiner, LinkGrant, LocalPeer, MAX_GRANT_LEN, PairMessage,
    PairedPeer, PairingCode, PairingError, Purpose, Ticket,
};
use iroh::Endpoint;
use iroh::endpoint::{Connection, ConnectionError, Incoming, RecvStream, SendStream, VarInt};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::endpoint::{endpoint_addr, local_contact, observed_contact, remote_endpoint_id};
use crate::framing::{FrameError, read_frame, write_frame};
use crate::{Clock, Gate, LINK_ALPN, NetError, PAIR_ALPN, close_code};

/// Pairing messages are small; anything bigger is a broken or hostile peer.
const MAX_PAIR_FRAME: usize = 4 * 1024;
/// How long a connecting device has to send its join request.
const JOIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// How long to wait for the other side to finish before closing the connection.
const LINGER: Duration = Duration::from_secs(10);

/// Who this device is, as the partner will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalIdentity {
    /// The name shown to the partner.
    pub name: String,
    /// This person's journal id.
    pub journal_id: [u8; 16],
    /// What time it is here: tickets expire by this clock.
    pub clock: Clock,
    /// Journals this home already holds (see [`LocalPeer::taken_journals`]): refused, during
    /// the handshake and before any code is shown, if the partner announces one as theirs.
    pub taken_journals: Vec<[u8; 16]>,
    /// This person's device list, encoded; it must certify this device.
    pub devices: Vec<u8>,
    /// Already paired: only a device of this person may pair (see [`LocalPeer::only_person`]).
    pub only_person: Option<[u8; 32]>,
}

/// The partner both people confirmed: what to pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedPartner {
    /// The partner's display name.
    pub name: String,
    /// The partner's endpoint id.
    pub endpoint_id: [u8; 32],
    /// The partner's journal id.
    pub journal_id: [u8; 16],
    /// Direct addresses the partner can be reached at: what it announced, then what this
    /// connection observed.
    pub addrs: Vec<SocketAddr>,
    /// The partner's relay, if known.
    pub relay_url: Option<String>,
    /// The partner's person and devices, every signature checked.
    pub devices: duet_core::authority::DeviceList,
    /// When the ticket used for this pairing expired (Unix seconds, the inviter's clock):
    /// the one moment both sides know alike, so both count "days since pairing" from it.
    pub ticket_expires_at: i64,
}

/// Why pairing over the network failed.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The handshake itself refused (wrong secret, expired, declined, ...).
    #[error(transparent)]
    Pairing(#[from] PairingError),
    /// Nobody completed pairing in time.
    #[error(
        "nobody paired within {} seconds; run `duet pair invite` again and have your partner join right away",
        .0.as_secs()
    )]
    TimedOut(Duration),
    /// The ticket expired before anyone joined.
    #[error("the ticket expired before anyone joined; run `duet pair invite` again")]
    TicketExpired,
    /// The inviting device could not be reached.
    #[error(
        "could not reach your partner's device ({0}); check that `duet pair invite` is still running there \
            and that both devices share a network or a relay"
    )]
    Unreachable(String),
    /// The inviting device is reachable but not inviting.
    #[error(
        "your partner's device is not inviting right now; ask them to run `duet pair invite` and use the new \
            ticket"
    )]
    NoInviteOpen,
    /// The connection broke mid-handshake.
    #[error(
        "the connection to your partner's device broke during pairing ({0}); nothing was paired, start again"
    )]
    ConnectionLost(String),
    /// A frame could not be read or written.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// An address from the ticket could not be used.
    #[error(transparent)]
    Net(#[from] NetError),
    /// The local endpoint stopped.
    #[error("the network endpoint closed while pairing; start again")]
    EndpointClosed,
    /// The confirmation prompt failed.
    #[error("the confirmation prompt stopped unexpectedly; start again")]
    PromptFailed,
    /// The linking device could not make the new device's grant.
    #[error("could not hand this device's identity to the new device: {0}")]
    Grant(String),
    /// The operating system had no randomness to give.
    #[error("this system could not provide random bytes ({0}); pairing needs them")]
    Randomness(String),
}

fn random<const N: usize>() -> Result<[u8; N], PairError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| PairError::Randomness(e.to_string()))?;
    Ok(bytes)
}

fn local_peer(endpoint: &Endpoint, local: &LocalIdentity) -> LocalPeer {
    let (addrs, relay_url) = local_contact(endpoint);
    LocalPeer {
        endpoint_id: *endpoint.id().as_bytes(),
        name: local.name.clone(),
        journal_id: local.journal_id,
        addrs,
        relay_url,
        taken_journals: local.taken_journals.clone(),
        devices: local.devices.clone(),
        only_person: local.only_person,
    }
}

/// One pairing conversation: the connection and its single bi-stream.
struct Channel {
    conn: Connection,
    send: SendStream,
    recv: RecvStream,
}

impl Channel {
    async fn send(&mut self, message: impl Into<PairMessage>) -> Result<(), PairError> {
        let bytes = message.into().encode();
        write_frame(&mut self.send, &bytes)
            .await
            .map_err(|err| self.explain(err))
    }

    /// Reads the next message; an `Abort` from the other side becomes its error.
    async fn recv(&mut self, deadline: Instant) -> Result<PairMessage, PairError> {
        let wait = deadline.saturating_duration_since(Instant::now());
        let frame = read_frame(&mut self.recv, MAX_PAIR_FRAME, wait)
            .await
            .map_err(|err| self.explain(err))?;
        let Some(bytes) = frame else {
            return Err(PairError::ConnectionLost(
                "the other device ended the conversation early".into(),
            ));
        };
        match PairMessage::decode(&bytes) {
            Ok(PairMessage::Abort(Abort { reason })) => Err(reason.into_error().into()),
            Ok(message) => Ok(message),
            Err(err) => {
                self.abort(&err).await;
                Err(err.into())
            }
        }
    }

    /// Reads one raw frame of at most `max` bytes (the link grant).
    async fn recv_raw(&mut self, max: usize, deadline: Instant) -> Result<Vec<u8>, PairError> {
        let wait = deadline.saturating_duration_since(Instant::now());
        match read_frame(&mut self.recv, max, wait).await {
            Ok(Some(bytes)) => Ok(bytes),
            Ok(None) => Err(PairError::ConnectionLost(
                "the other device ended the conversation early".into(),
            )),
            Err(err) => Err(self.explain(err)),
        }
    }

    /// Tells the other side why we stop, if it should know, and lets the message arrive.
    async fn abort(&mut self, err: &PairingError) {
        if let Some(reason) = err.abort_reason() {
            let _ = self.send(Abort { reason }).await;
        }
        self.linger().await;
    }

    /// Ends the conversation without losing our last message: finish our side, then wait
    /// (bounded) until the other side has finished too, which it does only after reading
    /// everything it wanted. Closing earlier could discard bytes it has not read yet.
    async fn linger(&mut self) {
        let _ = self.send.finish();
        let drain = async {
            let mut sink = [0u8; 256];
            while let Ok(Some(_)) = self.recv.read(&mut sink).await {}
        };
        let _ = tokio::time::timeout(LINGER, drain).await;
        self.conn
            .close(VarInt::from_u32(close_code::DONE), b"pairing finished");
    }

    /// Turns a frame error into the most useful pairing error: if the other side closed the
    /// connection on purpose, say why.
    fn explain(&self, err: FrameError) -> PairError {
        match (&err, self.conn.close_reason()) {
            (FrameError::Io(_) | FrameError::Truncated, Some(reason)) => closed_error(&reason),
            _ => err.into(),
        }
    }
}

fn closed_error(reason: &ConnectionError) -> PairError {
    match reason {
        ConnectionError::ApplicationClosed(close)
            if close.error_code == VarInt::from_u32(close_code::NOT_ALLOWED) =>
        {
            PairError::NoInviteOpen
        }
        other => PairError::ConnectionLost(other.to_string()),
    }
}

/// The connection close buried in a connect error, if the other side closed on purpose.
fn find_close<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a ConnectionError> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(close) = err.downcast_ref::<ConnectionError>() {
            return Some(close);
        }
        current = err.source();
    }
    None
}

/// Runs the prompt on a blocking thread so a terminal read does not stall the runtime.
async fn ask(
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    code: PairingCode,
    partner_name: String,
    deadline: Instant,
) -> Result<bool, PairError> {
    let prompt = tokio::task::spawn_blocking(move || confirm(&code, &partner_name));
    let wait = deadline.saturating_duration_since(Instant::now());
    match tokio::time::timeout(wait, prompt).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(PairError::PromptFailed),
        Err(_) => Err(PairError::TimedOut(wait)),
    }
}

/// The confirmation phase, the same on both sides.
trait ConfirmPhase {
    fn decide(&mut self, accepted: bool) -> Result<Confirm, PairingError>;
    fn handle_confirm(&mut self, confirm: &Confirm) -> Result<(), PairingError>;
    fn finish(self) -> Result<PairedPeer, PairingError>;
}

macro_rules! confirm_phase {
    ($t:ty) => {
        impl ConfirmPhase for $t {
            fn decide(&mut self, accepted: bool) -> Result<Confirm, PairingError> {
                <$t>::decide(self, accepted)
            }
            fn handle_confirm(&mut self, confirm: &Confirm) -> Result<(), PairingError> {
                <$t>::handle_confirm(self, confirm)
            }
            fn finish(self) -> Result<PairedPeer, PairingError> {
                <$t>::finish(self)
            }
        }
    };
}
confirm_phase!(Inviter);
confirm_phase!(Joiner);

/// Shows the code, sends our answer, and (if we said yes) waits for the partner's.
async fn confirm_and_finish<M: ConfirmPhase>(
    channel: &mut Channel,
    mut machine: M,
    code: PairingCode,
    partner_name: String,
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    deadline: Instant,
) -> Result<PairedPeer, PairError> {
    let accepted = ask(confirm, code, partner_name, deadline).await?;
    let answer = machine.decide(accepted)?;
    // If the partner already said no and left, this fails, but its answer may still be waiting
    // to be read: read it before reporting the failed send.
    let sent = channel.send(answer).await;
    if accepted {
        match channel.recv(deadline).await {
            Ok(PairMessage::Confirm(theirs)) => {
                if let Err(err) = machine.handle_confirm(&theirs) {
                    channel.linger().await;
                    return Err(err.into());
                }
            }
            Err(err) => return Err(sent.err().unwrap_or(err)),
            Ok(other) => {
                let err = PairingError::UnexpectedMessage {
                    got: other.kind(),
                    expected: "the partner's confirmation",
                };
                channel.abort(&err).await;
                return Err(err.into());
            }
        }
    }
    // If both said yes but ours did not go out, the partner pins nothing: neither do we.
    if let Err(err) = sent {
        channel.linger().await;
        return Err(err);
    }
    match machine.finish() {
        Ok(peer) => Ok(peer),
        Err(err) => {
            channel.linger().await;
            Err(err.into())
        }
    }
}

fn alpn(purpose: Purpose) -> &'static [u8] {
    match purpose {
        Purpose::Pair => PAIR_ALPN,
        Purpose::Link => LINK_ALPN,
    }
}

/// What the inviting side of a device link hands the new device once both said yes: built
/// from the new device's id and label (it certifies the device and returns the grant's bytes).
pub type MakeGrant = Box<dyn FnOnce(&PairedPeer) -> Result<Vec<u8>, String> + Send>;

fn partner_from(
    peer: PairedPeer,
    extra_addrs: impl IntoIterator<Item = SocketAddr>,
    fallback_relay: Option<String>,
    ticket_expires_at: i64,
) -> PairedPartner {
    let mut addrs = peer.addrs;
    for addr in extra_addrs {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    PairedPartner {
        name: peer.name,
        endpoint_id: peer.endpoint_id,
        journal_id: peer.journal_id,
        addrs,
        relay_url: peer.relay_url.or(fallback_relay),
        ticket_expires_at,
        devices: peer.devices,
    }
}

/// Pairing attempts read at once while an invite is open (each is bounded in time too).
pub const MAX_PAIRING_ATTEMPTS: usize = 8;

/// Invites a partner: prints a ticket through `on_ticket`, opens the pairing protocol on
/// `gate`, and waits for one device to join with it.
///
/// `endpoint` must accept [`PAIR_ALPN`] and have `gate` installed as a hook (see
/// [`crate::bind_endpoint`]); this function runs the endpoint's accept loop, so it must not be
/// mounted in a `Router` at the same time. `confirm` is called with the code and the partner's
/// announced name, on a blocking thread; return `true` if the person confirmed the code.
///
/// Devices that present a wrong secret are refused and the invite stays open. The first device
/// that proves the secret uses the ticket up; devices that come after it are told so. The ticket
/// stops admitting new joiners at `ttl`; the whole call ends by `timeout`.
pub async fn pair_invite(
    endpoint: &Endpoint,
    gate: &Gate,
    local: &LocalIdentity,
    ttl: Duration,
    on_ticket: impl FnOnce(&Ticket),
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    timeout: Duration,
) -> Result<PairedPartner, PairError> {
    invite(
        endpoint, gate, local, ttl, on_ticket, confirm, timeout, None,
    )
    .await
}

/// Links a new device of this person: like [`pair_invite`] on [`LINK_ALPN`], with a link
/// ticket; once both screens are confirmed, `grant` certifies the new device and its bytes
/// are sent to it. Returns the new device (its id, and its label as `name`).
#[allow(clippy::too_many_arguments)]
pub async fn link_invite(
    endpoint: &Endpoint,
    gate: &Gate,
    local: &LocalIdentity,
    ttl: Duration,
    on_ticket: impl FnOnce(&Ticket),
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    grant: MakeGrant,
    timeout: Duration,
) -> Result<PairedPartner, PairError> {
    invite(
        endpoint,
        gate,
        local,
        ttl,
        on_ticket,
        confirm,
        timeout,
        Some(grant),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn invite(
    endpoint: &Endpoint,
    gate: &Gate,
    local: &LocalIdentity,
    ttl: Duration,
    on_ticket: impl FnOnce(&Ticket),
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    timeout: Duration,
    grant: Option<MakeGrant>,
) -> Result<PairedPartner, PairError> {
    let purpose = if grant.is_some() {
        Purpose::Link
    } else {
        Purpose::Pair
    };
    let started = Instant::now();
    let deadline = started + timeout;
    let expires_in = ttl.min(Duration::from_secs(i64::MAX as u64 / 2));
    let invitation = Invitation::for_purpose(
        local_peer(endpoint, local),
        random()?,
        local
            .clock
            .now_secs()
            .saturating_add(expires_in.as_secs() as i64),
        purpose,
    )?;
    let join_deadline = deadline.min(started + expires_in);
    let expires_at = invitation.expires_at();
    let invitation = Arc::new(Mutex::new(invitation));
    let _open = gate.open_invite();
    on_ticket(&lock(&invitation).ticket());

    type Session<'a> = Pin<Box<dyn Future<Output = Result<PairedPartner, PairError>> + Send + 'a>>;
    let mut attempts: JoinSet<Option<Admitted>> = JoinSet::new();
    let mut session: Option<Session<'_>> = None;
    let mut confirm = Some(confirm);
    let mut grant = Some(grant);
    loop {
        tokio::select! {
            result = async { session.as_mut().expect("guarded").await }, if session.is_some() => {
                return result;
            }
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else {
                    return Err(PairError::EndpointClosed);
                };
                if attempts.len() >= MAX_PAIRING_ATTEMPTS {
                    // Someone is hammering the open invite: turn the newcomer away unread.
                    incoming.refuse();
                    continue;
                }
                attempts.spawn(admit(incoming, invitation.clone(), local.clock, alpn(purpose)));
            }
            Some(joined) = attempts.join_next(), if !attempts.is_empty() => {
                let Ok(Some(admitted)) = joined else { continue };
                match confirm.take() {
                    Some(confirm) => {
                        let grant = grant.take().flatten();
                        let run = run_invite_session(admitted, expires_at, confirm, grant, deadline);
                        session = Some(Box::pin(run));
                    }
                    // The invitation lets exactly one joiner through, so this cannot happen.
                    None => admitted.channel.conn.close(VarInt::from_u32(close_code::PROTOCOL), b"already \
                        paired"),
                }
            }
            _ = tokio::time::sleep_until(join_deadline), if session.is_none() => {
                return Err(if join_deadline < deadline {
                    PairError::TicketExpired
                } else {
                    PairError::TimedOut(timeout)
                });
            }
        }
    }
}

fn lock(invitation: &Mutex<Invitation>) -> std::sync::MutexGuard<'_, Invitation> {
    invitation.lock().unwrap_or_else(|p| p.into_inner())
}

/// A joiner that proved the secret; the invitation is used up.
struct Admitted {
    channel: Channel,
    inviter: Inviter,
    partner_name: String,
}

/// Reads one device's join request and checks it against the invitation. Refusals are sent to
/// that device and logged; only a valid proof comes back.
async fn admit(
    incoming: Incoming,
    invitation: Arc<Mutex<Invitation>>,
    clock: Clock,
    expected_alpn: &'static [u8],
) -> Option<Admitted> {
    let handshake = async {
        let conn = incoming.await.ok()?;
        let (send, recv) = conn.accept_bi().await.ok()?;
        Some(Channel { conn, send, recv })
    };
    let mut channel = tokio::time::timeout(JOIN_REQUEST_TIMEOUT, handshake)
        .await
        .ok()??;
    if channel.conn.alpn() != expected_alpn {
        channel
            .conn
            .close(VarInt::from_u32(close_code::NOT_ALLOWED), b"not pairing");
        return None;
    }
    let remote = remote_endpoint_id(&channel.conn);
    let request = match channel.recv(Instant::now() + JOIN_REQUEST_TIMEOUT).await {
        Ok(PairMessage::JoinRequest(request)) => request,
        Ok(other) => {
            let err = PairingError::UnexpectedMessage {
                got: other.kind(),
                expected: "a join request",
            };
            channel.abort(&err).await;
            return None;
        }
        Err(err) => {
            tracing::debug!(%err, "a pairing attempt failed before its join request");
            return None;
        }
    };
    let nonce = random::<32>().ok()?;
    let accepted = lock(&invitation).accept(remote, &request, clock.now_secs(), nonce);
    match accepted {
        Ok((inviter, reply)) => {
            if let Err(err) = channel.send(reply).await {
                tracing::warn!(%err, "the joiner left right after proving the secret");
                return None;
            }
            Some(Admitted {
                channel,
                inviter,
                partner_name: request.name,
            })
        }
        Err(err) => {
            tracing::warn!(%err, remote = %channel.conn.remote_id().fmt_short(), "refused a pairing attempt");
            channel.abort(&err).await;
            None
        }
    }
}

async fn run_invite_session(
    admitted: Admitted,
    expires_at: i64,
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    grant: Option<MakeGrant>,
    deadline: Instant,
) -> Result<PairedPartner, PairError> {
    let Admitted {
        mut channel,
        mut inviter,
        partner_name,
    } = admitted;
    let code = match channel.recv(deadline).await? {
        PairMessage::Reveal(reveal) => match inviter.handle_reveal(&reveal) {
            Ok(code) => code,
            Err(err) => {
                channel.abort(&err).await;
                return Err(err.into());
            }
        },
        other => {
            let err = PairingError::UnexpectedMessage {
                got: other.kind(),
                expected: "the joiner's reveal",
            };
            channel.abort(&err).await;
            return Err(err.into());
        }
    };
    let (seen_addrs, seen_relay) = observed_contact(&channel.conn);
    let peer =
        confirm_and_finish(&mut channel, inviter, code, partner_name, confirm, deadline).await?;
    if let Some(grant) = grant {
        let bytes = match grant(&peer) {
            Ok(bytes) => bytes,
            Err(why) => {
                channel.linger().await;
                return Err(PairError::Grant(why));
            }
        };
        let sent = write_frame(&mut channel.send, &bytes).await;
        channel.linger().await;
        sent.map_err(|err| channel.explain(err))?;
    } else {
        channel.linger().await;
    }
    Ok(partner_from(peer, seen_addrs, seen_relay, expires_at))
}

/// Joins the partner who showed `ticket`: dials it, runs the handshake, asks `confirm` (on a
/// blocking thread, with the code and the partner's announced name) and returns the partner if
/// both people confirmed. The whole call ends by `timeout`.
pub async fn pair_join(
    endpoint: &Endpoint,
    ticket: &Ticket,
    local: &LocalIdentity,
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    timeout: Duration,
) -> Result<PairedPartner, PairError> {
    Ok(
        join(endpoint, ticket, local, confirm, timeout, Purpose::Pair)
            .await?
            .0,
    )
}

/// Joins this person's device that showed the link `ticket`: a new device with no journal and
/// no device list (`local` names the all-zero journal and carries its label as `name`). Returns
/// the linking device and the grant it sent, not yet checked.
pub async fn link_join(
    endpoint: &Endpoint,
    ticket: &Ticket,
    local: &LocalIdentity,
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    timeout: Duration,
) -> Result<(PairedPartner, LinkGrant), PairError> {
    let (peer, grant) = join(endpoint, ticket, local, confirm, timeout, Purpose::Link).await?;
    let grant = grant.ok_or_else(|| PairError::Pairing(PairingError::BadGrant))?;
    Ok((peer, LinkGrant::decode(&grant)?))
}

async fn join(
    endpoint: &Endpoint,
    ticket: &Ticket,
    local: &LocalIdentity,
    confirm: impl FnOnce(&PairingCode, &str) -> bool + Send + 'static,
    timeout: Duration,
    purpose: Purpose,
) -> Result<(PairedPartner, Option<Vec<u8>>), PairError> {
    let deadline = Instant::now() + timeout;
    let (mut joiner, request) =
        Joiner::for_purpose(ticket, &local_peer(endpoint, local), random()?, purpose)?;
    let addr = endpoint_addr(
        &ticket.endpoint_id,
        &ticket.addrs,
        ticket.relay_url.as_deref(),
    )?;

    let connect = async {
        let conn =
            endpoint
                .connect(addr, alpn(purpose))
                .await
                .map_err(|err| match find_close(&err) {
                    Some(reason) => closed_error(reason),
                    None => PairError::Unreachable(err.to_string()),
                })?;
        let (send, recv) = match conn.open_bi().await {
            Ok(stream) => stream,
            Err(err) => {
                return Err(match conn.close_reason() {
                    Some(reason) => closed_error(&reason),
                    None => PairError::ConnectionLost(err.to_string()),
                });
            }
        };
        Ok(Channel { conn, send, recv })
    };
    let mut channel = tokio::time::timeout_at(deadline, connect)
        .await
        .map_err(|_| {
            PairError::Unreachable(format!("no answer within {} seconds", timeout.as_secs()))
        })??;

    channel.send(request).await?;
    let reply = match channel.recv(deadline).await? {
        PairMessage::InviteReply(reply) => reply,
        other => {
            let err = PairingError::UnexpectedMessage {
                got: other.kind(),
                expected: "the inviter's reply",
            };
            channel.abort(&err).await;
            return Err(err.into());
        }
    };
    let (reveal, code) = match joiner.handle_reply(&reply) {
        Ok(step) => step,
        Err(err) => {
            channel.abort(&err).await;
            return Err(err.into());
        }
    };
    channel.send(reveal).await?;
    let peer =
        confirm_and_finish(&mut channel, joiner, code, reply.name, confirm, deadline).await?;
    let grant = match purpose {
        Purpose::Pair => None,
        Purpose::Link => Some(channel.recv_raw(MAX_GRANT_LEN, deadline).await),
    };
    channel.linger().await;
    let grant = grant.transpose()?;
    let partner = partner_from(
        peer,
        ticket.addrs.iter().copied(),
        ticket.relay_url.clone(),
        ticket.expires_at,
    );
    Ok((partner, grant))
}
