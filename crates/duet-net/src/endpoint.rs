//! Building the iroh endpoint from duet's settings, and addressing peers.

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use iroh::endpoint::{Builder, Connection, PortmapperConfig, QuicTransportConfig, presets};
use iroh::{
    Endpoint, EndpointAddr, EndpointId, NetReportConfig, RelayUrl, SecretKey, TransportAddr,
};

use crate::Gate;
use crate::lan::{Lan, LanLookup};
use crate::resolver::SystemResolver;
use iroh::dns::DnsResolver;

/// Which relay servers the endpoint uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayMode {
    /// No relay, no address lookup, no port mapping: the endpoint talks only to the addresses it
    /// is given. Works on a LAN with no internet.
    Disabled,
    /// n0's public relays and DNS address lookup.
    Default,
    /// This relay server only, and no address lookup.
    Custom(RelayUrl),
}

impl RelayMode {
    /// The partner's relay (learned at pairing or sync: their word, untrusted) if this device
    /// may use it: never with relays disabled, only the very same relay when this device names
    /// its own, and only one of iroh's default relays with `default`. A partner cannot send this
    /// device to a server of their choosing.
    pub fn partner_relay<'a>(&self, theirs: Option<&'a str>) -> Option<&'a str> {
        let url: RelayUrl = theirs?.parse().ok()?;
        // The same server: scheme, host (with or without its final dot) and port.
        let same = |a: &RelayUrl, b: &RelayUrl| {
            let host = |u: &RelayUrl| u.host_str().map(|h| h.trim_end_matches('.').to_owned());
            a.scheme() == b.scheme()
                && host(a) == host(b)
                && a.port_or_known_default() == b.port_or_known_default()
        };
        let allowed = match self {
            RelayMode::Disabled => false,
            RelayMode::Custom(own) => same(own, &url),
            RelayMode::Default => {
                let defaults: Vec<RelayUrl> = iroh::defaults::prod::default_relay_map().urls();
                defaults.iter().any(|d| same(d, &url))
            }
        };
        allowed.then_some(theirs?)
    }
}

/// The text given to `--relay` was not understood.
#[derive(Debug, thiserror::Error)]
#[error(
    "`{input}` is not a relay setting; use `disabled`, `default` or a relay URL such as \
        `https://relay.example.org`"
)]
pub struct RelayModeParseError {
    input: String,
}

impl FromStr for RelayMode {
    type Err = RelayModeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "disabled" | "off" | "none" => return Ok(RelayMode::Disabled),
            "default" => return Ok(RelayMode::Default),
            _ => {}
        }
        let err = || RelayModeParseError {
            input: s.to_string(),
        };
        if !(s.starts_with("https://") || s.starts_with("http://")) {
            return Err(err());
        }
        s.parse::<RelayUrl>()
            .map(RelayMode::Custom)
            .map_err(|_| err())
    }
}

impl std::fmt::Display for RelayMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RelayMode::Disabled => f.write_str("disabled"),
            RelayMode::Default => f.write_str("default"),
            RelayMode::Custom(url) => write!(f, "{url}"),
        }
    }
}

/// Everything needed to bind this device's endpoint.
#[derive(Clone)]
pub struct NetConfig {
    /// The device key (ed25519 secret); its public half is the endpoint id.
    pub secret_key: [u8; 32],
    /// Relay servers to use.
    pub relay: RelayMode,
    /// Bind the UDP socket to this address only (tests use `127.0.0.1:0`). `None` binds the
    /// unspecified IPv4 and IPv6 addresses on a random port.
    pub bind: Option<SocketAddr>,
    /// Announce this device and look for the couple's devices on the local network (mDNS,
    /// [`crate::lan`]). Never on an endpoint bound to loopback.
    pub lan: Lan,
}

// The secret key must not end up in logs.
impl std::fmt::Debug for NetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetConfig")
            .field(
                "endpoint_id",
                &SecretKey::from_bytes(&self.secret_key).public(),
            )
            .field("relay", &self.relay)
            .field("bind", &self.bind)
            .field("lan", &self.lan)
            .finish()
    }
}

impl NetConfig {
    /// Whether the endpoint looks on the local network: asked for, and not bound to loopback
    /// (such an endpoint can neither be reached from the network nor reach it).
    pub fn lan_enabled(&self) -> bool {
        self.lan != Lan::Off && !self.bind.is_some_and(|a| a.ip().is_loopback())
    }

    /// This device's endpoint id.
    pub fn endpoint_id(&self) -> EndpointId {
        SecretKey::from_bytes(&self.secret_key).public()
    }
}

/// Errors from setting up the network.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// `--bind` was refused by the builder.
    #[error("cannot bind to {addr}: {source}; pass another address with `--bind`")]
    InvalidBind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why iroh refused it.
        #[source]
        source: iroh::endpoint::InvalidSocketAddr,
    },
    /// The socket could not be opened.
    #[error(
        "cannot open the network endpoint: {0}; check `--bind` (is the port in use?) and try again"
    )]
    Bind(#[source] iroh::endpoint::BindError),
    /// A stored endpoint id is not a valid ed25519 public key.
    #[error("the stored partner id is not a valid device key; pair again with `duet pair invite`")]
    InvalidEndpointId,
    /// A stored relay URL could not be parsed.
    #[error("the stored relay URL `{0}` is not valid; pair again or pass `--relay`")]
    InvalidRelayUrl(String),
}

/// An endpoint builder with duet's settings applied, for callers that need to add more (tests
/// use this to trust a loopback relay's self-signed certificate).
///
/// - `Disabled`: [`presets::Minimal`] (only the crypto provider), no relay, no address lookup,
///   port mapper off, net report without HTTPS or captive-portal probes. Nothing is contacted
///   except the addresses the application dials.
/// - `Default`: [`presets::N0`]: n0's relays and DNS address lookup; port mapper on.
/// - `Custom`: [`presets::Minimal`] plus that relay; no address lookup, port mapper off.
///
/// Except with `Default`, host names (a relay's) are resolved by the system alone
/// ([`SystemResolver`]): no public DNS server is asked. With `cfg.lan`, the LAN lookup
/// ([`LanLookup`]) is added in every mode; it stays on the local link.
pub fn endpoint_builder(cfg: &NetConfig) -> Result<Builder, NetError> {
    let builder = match &cfg.relay {
        RelayMode::Default => Endpoint::builder(presets::N0),
        RelayMode::Disabled => Endpoint::builder(presets::Minimal)
            .relay_mode(iroh::RelayMode::Disabled)
            .portmapper_config(PortmapperConfig::Disabled)
            .net_report_config(NetReportConfig::minimal()),
        RelayMode::Custom(url) => Endpoint::builder(presets::Minimal)
            .relay_mode(iroh::RelayMode::custom([url.clone()]))
            .portmapper_config(PortmapperConfig::Disabled),
    };
    // A first guess of 100 ms for the round trip (QUIC's default is 333 ms): a handshake whose
    // first packets went to an address the peer left (a new DHCP lease) is sent again, to the
    // address the LAN lookup found meanwhile, after about 0.3 s instead of 1 s. Retransmission
    // still backs off exponentially, so a slow link costs a few packets more, never a storm.
    // No path MTU discovery: its padded probes on every new path cost about 10 KB per session,
    // as much as a whole small sync; datagrams stay at QUIC's 1,200 bytes (docs/protocol.md).
    let transport = QuicTransportConfig::builder()
        .initial_rtt(Duration::from_millis(100))
        .mtu_discovery_config(None)
        .build();
    let mut builder = builder
        .secret_key(SecretKey::from_bytes(&cfg.secret_key))
        .transport_config(transport);
    if cfg.relay != RelayMode::Default {
        builder = builder.dns_resolver(DnsResolver::custom(SystemResolver));
    }
    if cfg.lan_enabled() {
        let own = *cfg.endpoint_id().as_bytes();
        builder = builder.address_lookup(LanLookup::start(own, cfg.bind.map(|a| a.ip()), cfg.lan));
    }
    if let Some(addr) = cfg.bind {
        builder = builder
            .clear_ip_transports()
            .bind_addr(addr)
            .map_err(|source| NetError::InvalidBind { addr, source })?;
    }
    Ok(builder)
}

/// Binds this device's endpoint, accepting `alpns` and admitting connections through `gate`.
pub async fn bind_endpoint(
    cfg: &NetConfig,
    alpns: Vec<Vec<u8>>,
    gate: Gate,
) -> Result<Endpoint, NetError> {
    endpoint_builder(cfg)?
        .alpns(alpns)
        .hooks(gate)
        .bind()
        .await
        .map_err(NetError::Bind)
}

/// Waits until the endpoint has reached its home relay, at most `max`. Returns at once when
/// relays are disabled, because then there is nothing to wait for.
pub async fn wait_online(endpoint: &Endpoint, relay: &RelayMode, max: Duration) -> bool {
    if *relay == RelayMode::Disabled {
        return false;
    }
    tokio::time::timeout(max, endpoint.online()).await.is_ok()
}

/// How to reach a peer: its id, the direct addresses we know, and its relay if any.
pub fn endpoint_addr(
    id: &[u8; 32],
    addrs: &[SocketAddr],
    relay_url: Option<&str>,
) -> Result<EndpointAddr, NetError> {
    let id = EndpointId::from_bytes(id).map_err(|_| NetError::InvalidEndpointId)?;
    let mut addr = EndpointAddr::from_parts(id, addrs.iter().copied().map(TransportAddr::Ip));
    if let Some(url) = relay_url {
        let url: RelayUrl = url
            .parse()
            .map_err(|_| NetError::InvalidRelayUrl(url.to_string()))?;
        addr = addr.with_relay_url(url);
    }
    Ok(addr)
}

/// Whether the other side's gate turned this device away (a [`crate::close_code::NOT_ALLOWED`]
/// close), as opposed to a network failure: found in a connection's close reason or anywhere in
/// an error's chain of causes.
pub fn refused_by_gate(err: &(dyn std::error::Error + 'static)) -> bool {
    closed_with(err, crate::close_code::NOT_ALLOWED)
}

/// Whether the other side closed the connection because the two devices' dials crossed
/// ([`crate::close_code::CROSSED`]).
pub fn closed_as_crossed(err: &(dyn std::error::Error + 'static)) -> bool {
    closed_with(err, crate::close_code::CROSSED)
}

/// Whether the other side closed the connection with the application close `code`, found in a
/// connection's close reason or anywhere in an error's chain of causes.
fn closed_with(err: &(dyn std::error::Error + 'static), code: u32) -> bool {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(iroh::endpoint::ConnectionError::ApplicationClosed(close)) =
            err.downcast_ref::<iroh::endpoint::ConnectionError>()
        {
            return close.error_code == iroh::endpoint::VarInt::from_u32(code);
        }
        current = err.source();
    }
    false
}

/// The endpoint id the connection's TLS handshake proved, as raw bytes.
pub fn remote_endpoint_id(conn: &Connection) -> [u8; 32] {
    *conn.remote_id().as_bytes()
}

/// Where this endpoint can be reached right now: its direct addresses (falling back to the
/// bound sockets when it has not discovered any, which is the case on loopback) and its home
/// relay, if connected to one.
pub fn local_contact(endpoint: &Endpoint) -> (Vec<SocketAddr>, Option<String>) {
    let current = endpoint.addr();
    let mut addrs: Vec<SocketAddr> = current.ip_addrs().copied().collect();
    if addrs.is_empty() {
        addrs = endpoint
            .bound_sockets()
            .into_iter()
            .filter(|a| !a.ip().is_unspecified())
            .collect();
    }
    addrs.truncate(duet_core::pairing::MAX_ADDRS);
    let relay = current.relay_urls().next().map(|url| url.to_string());
    (addrs, relay)
}

/// The IP addresses and relay a connection currently uses to reach its peer.
pub(crate) fn observed_contact(conn: &Connection) -> (Vec<SocketAddr>, Option<String>) {
    let mut addrs = Vec::new();
    let mut relay = None;
    for path in conn.paths().iter() {
        match path.remote_addr() {
            TransportAddr::Ip(addr) => addrs.push(*addr),
            TransportAddr::Relay(url) => relay = Some(url.to_string()),
            _ => {}
        }
    }
    (addrs, relay)
}

/// Whether an address is on a local network: private, shared-nothing ranges that a home router
/// hands out (RFC 1918, link-local, IPv6 unique local) or this machine itself.
pub fn is_local_network(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(v4) => v4.is_private() || v4.is_link_local() || v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_local_network(v4.into());
            }
            v6.is_loopback() || v6.is_unique_local() || v6.is_unicast_link_local()
        }
    }
}

/// How a connection reaches its peer: the IP addresses of its paths, the relay of a relay path,
/// and the kind of the path it uses (`lan`, `internet` or `relay`).
pub fn reach(conn: &Connection) -> duet_store::home::Reach {
    let (addrs, relay_url) = observed_contact(conn);
    let path = conn
        .paths()
        .iter()
        .find(|p| p.is_selected())
        .and_then(|p| match p.remote_addr() {
            TransportAddr::Ip(addr) if is_local_network(addr.ip()) => Some("lan"),
            TransportAddr::Ip(_) => Some("internet"),
            TransportAddr::Relay(_) => Some("relay"),
            _ => None,
        });
    duet_store::home::Reach {
        addrs: addrs.iter().map(ToString::to_string).collect(),
        relay_url,
        path: path.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_network_addresses_are_told_from_internet_ones() {
        for (ip, local) in [
            ("192.168.1.7", true),
            ("10.7.0.22", true),
            ("172.20.0.1", true),
            ("169.254.3.4", true),
            ("127.0.0.1", true),
            ("fd12::1", true),
            ("fe80::1", true),
            ("::ffff:192.168.1.7", true),
            ("8.8.8.8", false),
            ("100.64.0.1", false),
            ("2001:db8::1", false),
            ("::ffff:8.8.8.8", false),
        ] {
            assert_eq!(is_local_network(ip.parse().unwrap()), local, "{ip}");
        }
    }

    #[test]
    fn relay_settings_parse() {
        assert_eq!(
            "disabled".parse::<RelayMode>().unwrap(),
            RelayMode::Disabled
        );
        assert_eq!(
            " Default ".parse::<RelayMode>().unwrap(),
            RelayMode::Default
        );
        let custom: RelayMode = "https://relay.example.org".parse().unwrap();
        assert!(matches!(custom, RelayMode::Custom(_)));
        for bad in ["", "relay.example.org", "ftp://x", "https://", "defualt"] {
            let err = bad.parse::<RelayMode>().unwrap_err();
            assert!(err.to_string().contains("`disabled`, `default`"), "{err}");
        }
    }

    #[test]
    fn endpoint_addr_carries_what_we_know() {
        let id = *SecretKey::from_bytes(&[3; 32]).public().as_bytes();
        let direct: SocketAddr = "127.0.0.1:4444".parse().unwrap();
        let addr = endpoint_addr(&id, &[direct], Some("https://relay.example.org")).unwrap();
        assert_eq!(addr.ip_addrs().collect::<Vec<_>>(), vec![&direct]);
        assert_eq!(addr.relay_urls().count(), 1);
        assert!(matches!(
            endpoint_addr(&id, &[], Some("not a url")),
            Err(NetError::InvalidRelayUrl(_))
        ));
    }

    #[test]
    fn a_partner_cannot_send_this_device_to_a_relay_of_their_choosing() {
        let own: RelayMode = "https://relay.example.org".parse().unwrap();
        let theirs = "https://relay.example.org./";
        assert_eq!(own.partner_relay(Some(theirs)), Some(theirs));
        assert_eq!(own.partner_relay(Some("https://evil.example.net")), None);
        assert_eq!(RelayMode::Disabled.partner_relay(Some(theirs)), None);
        assert_eq!(
            RelayMode::Default.partner_relay(Some("https://evil.example.net")),
            None
        );
        let n0 = "https://euc1-1.relay.n0.iroh.link./";
        assert_eq!(RelayMode::Default.partner_relay(Some(n0)), Some(n0));
        assert_eq!(own.partner_relay(None), None);
    }
}
