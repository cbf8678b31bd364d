//! Hosts of their own for the network tests: each a network namespace held open by a sleeping
//! process the test started (`unshare -n`), joined to the others by veth links and bridges made
//! inside those namespaces. Nothing touches the interfaces of the namespace the test runs in, and
//! everything goes when the test ends (the holders are killed, the namespaces die with them).
//!
//! Needs root (or CAP_SYS_ADMIN and CAP_NET_ADMIN), `unshare`, `nsenter` and `ip`. Where they are
//! missing [`World::new`] says why and the test skips, except under CI, where it fails.

use std::fs::File;
use std::os::fd::AsFd;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::DuetCommand;

/// One host: a network namespace with loopback up.
pub struct Host {
    pub name: String,
    holder: Child,
}

impl Host {
    /// The pid whose namespace this host is.
    pub fn pid(&self) -> u32 {
        self.holder.id()
    }

    /// Run a shell command in this host's namespace; panics with its output if it fails.
    pub fn sh(&self, script: &str) -> String {
        let out = Command::new("nsenter")
            .args(["-t", &self.pid().to_string(), "-n", "sh", "-c", script])
            .output()
            .expect("nsenter runs");
        assert!(
            out.status.success(),
            "on {}: `{script}` failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Move the calling thread into this host's network namespace: sockets it opens from then on
    /// belong to the host (for helpers the test runs in-process: a relay, a forwarder).
    pub fn enter(&self) {
        enter_pid(self.pid());
    }

    /// Give this host a new address on `dev`, as a new DHCP lease would: the old one goes, and
    /// the routes the lease brings (multicast, and any given in `routes`) come back.
    pub fn readdress(&self, dev: &str, cidr: &str) {
        self.sh(&format!(
            "ip addr flush dev {dev} && ip addr add {cidr} dev {dev} && \
             ip route replace 224.0.0.0/4 dev {dev}"
        ));
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

/// The hosts of one test.
pub struct World {
    hosts: Vec<Host>,
    links: usize,
}

impl World {
    /// A world to build hosts in, or why there cannot be one here.
    pub fn new() -> Result<World, String> {
        for tool in ["unshare", "nsenter", "ip"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !found {
                return Err(format!("`{tool}` is not installed"));
            }
        }
        let mut world = World {
            hosts: Vec::new(),
            links: 0,
        };
        let probe = world.try_host("probe")?;
        drop(probe);
        Ok(world)
    }

    /// [`World::new`], or skip the test with the reason (fail instead when `CI` is set: CI can
    /// make namespaces, so not making them there is a defect).
    pub fn or_skip(test: &str) -> Option<World> {
        match World::new() {
            Ok(world) => Some(world),
            Err(why) if std::env::var_os("CI").is_some() => {
                panic!("{test}: cannot create network namespaces under CI: {why}")
            }
            Err(why) => {
                eprintln!("skipping {test}: cannot create network namespaces here ({why})");
                None
            }
        }
    }

    fn try_host(&mut self, name: &str) -> Result<Host, String> {
        let mut holder = Command::new("unshare")
            .args(["-n", "sleep", "900"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run unshare: {e}"))?;
        // The namespace exists once the holder runs `sleep`: its namespace differs from ours.
        let ours = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Ok(Some(status)) = holder.try_wait() {
                let mut err = String::new();
                if let Some(mut e) = holder.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(format!("unshare -n failed ({status}): {}", err.trim()));
            }
            let theirs = std::fs::read_link(format!("/proc/{}/ns/net", holder.id()));
            let comm = std::fs::read_to_string(format!("/proc/{}/comm", holder.id()));
            if theirs.is_ok_and(|t| t != ours) && comm.is_ok_and(|c| c.trim() == "sleep") {
                break;
            }
            if Instant::now() > deadline {
                let _ = holder.kill();
                return Err("unshare -n did not start within 5 s".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let host = Host {
            name: name.to_owned(),
            holder,
        };
        let up = Command::new("nsenter")
            .args([
                "-t",
                &host.pid().to_string(),
                "-n",
                "ip",
                "link",
                "set",
                "lo",
                "up",
            ])
            .output()
            .map_err(|e| format!("cannot run nsenter: {e}"))?;
        if !up.status.success() {
            return Err(format!(
                "cannot configure the new namespace: {}",
                String::from_utf8_lossy(&up.stderr).trim()
            ));
        }
        Ok(host)
    }

    /// A new host; returns its index.
    pub fn host(&mut self, name: &str) -> usize {
        let host = self.try_host(name).expect("a host");
        self.hosts.push(host);
        self.hosts.len() - 1
    }

    pub fn get(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    /// Join hosts `a` and `b` by a veth pair: `a_dev` with `a_cidr` on `a`, `b_dev` with
    /// `b_cidr` on `b`, both up. With `multicast`, each side routes multicast out of its end (mDNS
    /// cannot send without that route).
    pub fn link(&mut self, a: (usize, &str, &str), b: (usize, &str, &str), multicast: bool) {
        self.links += 1;
        let tmp = format!("dtl{}", self.links);
        let (ha, hb) = (&self.hosts[a.0], &self.hosts[b.0]);
        ha.sh(&format!(
            "ip link add {tmp} type veth peer name {} netns {} && ip link set {tmp} name {}",
            b.1,
            hb.pid(),
            a.1
        ));
        for (host, dev, cidr) in [(ha, a.1, a.2), (hb, b.1, b.2)] {
            let mut script = format!("ip addr add {cidr} dev {dev} && ip link set {dev} up");
            if multicast {
                script.push_str(&format!(" && ip route replace 224.0.0.0/4 dev {dev}"));
            }
            host.sh(&script);
        }
    }

    /// A switch: host `switch` gets a bridge, and each of `members` a port on it named `dev`
    /// with its address, multicast routed out of it. Returns nothing; the hosts share a LAN.
    pub fn lan(&mut self, switch: usize, members: &[(usize, &str, &str)]) {
        self.hosts[switch].sh(
            "ip link add br0 type bridge && ip link set br0 type bridge mcast_snooping 0 && \
             ip link set br0 up",
        );
        for (i, &(member, dev, cidr)) in members.iter().enumerate() {
            let port = format!("p{i}");
            let sw = &self.hosts[switch];
            let host = &self.hosts[member];
            sw.sh(&format!(
                "ip link add {port} type veth peer name {dev} netns {} && \
                 ip link set {port} master br0 && ip link set {port} up",
                host.pid()
            ));
            host.sh(&format!(
                "ip addr add {cidr} dev {dev} && ip link set {dev} up && \
                 ip route replace 224.0.0.0/4 dev {dev}"
            ));
        }
    }
}

impl DuetCommand {
    /// Run it on `host` (in its network namespace; files are shared).
    pub fn on_host(self, host: &Host) -> DuetCommand {
        self.wrapped("nsenter", &["-t", &host.pid().to_string(), "-n", "--"])
    }

    /// Run it on `host` with `/etc/hosts` replaced, for it alone, by `hosts_file` (a mount
    /// namespace of its own), so that a host name means what the test says.
    pub fn on_host_with_names(self, host: &Host, hosts_file: &std::path::Path) -> DuetCommand {
        let pid = host.pid().to_string();
        let script = format!(
            "mount --bind '{}' /etc/hosts && exec \"$0\" \"$@\"",
            hosts_file.display()
        );
        self.wrapped(
            "nsenter",
            &[
                "-t", &pid, "-n", "--", "unshare", "-m", "--", "sh", "-c", &script,
            ],
        )
    }
}

/// Move the calling thread into the network namespace of process `pid` (a [`Host`]'s).
pub fn enter_pid(pid: u32) {
    let ns = File::open(format!("/proc/{pid}/ns/net")).expect("the host's namespace");
    rustix::thread::move_into_link_name_space(
        ns.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .expect("setns into the host");
}

/// Run `make` on a thread inside `host`'s namespace and hand back what it made (sockets opened
/// there stay the host's wherever they are used from).
pub fn made_on<T: Send + 'static>(host: &Host, make: impl FnOnce() -> T + Send + 'static) -> T {
    let pid = host.pid();
    std::thread::spawn(move || {
        enter_pid(pid);
        make()
    })
    .join()
    .expect("the thread on the host")
}

/// What a link does to the datagrams crossing it.
#[derive(Clone, Copy, Debug)]
pub struct Impairment {
    /// Percent of datagrams dropped, each direction on its own.
    pub loss_percent: u64,
    /// Delay of every datagram...
    pub delay: Duration,
    /// ...plus up to this much more, drawn per datagram: datagrams overtake each other.
    pub jitter: Duration,
    pub seed: u64,
}

impl Impairment {
    pub const CLEAN: Impairment = Impairment {
        loss_percent: 0,
        delay: Duration::ZERO,
        jitter: Duration::ZERO,
        seed: 1,
    };
}

/// Counts of what a [`Forwarder`] saw.
#[derive(Debug, Default)]
pub struct Crossed {
    pub forwarded: std::sync::atomic::AtomicU64,
    pub dropped: std::sync::atomic::AtomicU64,
}

/// A userspace UDP forwarder on a host between two others (the kernel here has no netem): what
/// arrives at `front` goes to `target` from `back`, what `target` answers to `back` goes to
/// whoever last sent to `front`; each datagram may be dropped, is delayed and reordered.
pub struct Forwarder {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    pub crossed: std::sync::Arc<Crossed>,
}

struct Due {
    at: Instant,
    seq: u64,
    to_target: bool,
    bytes: Vec<u8>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Earliest first out of a max-heap.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl Forwarder {
    pub fn start(
        host: &Host,
        front: std::net::SocketAddr,
        back: std::net::SocketAddr,
        target: std::net::SocketAddr,
        impairment: Impairment,
    ) -> Forwarder {
        use std::collections::BinaryHeap;
        use std::net::UdpSocket;
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Condvar, Mutex};

        let (front_sock, back_sock) = made_on(host, move || {
            let f = UdpSocket::bind(front).expect("forwarder front");
            let b = UdpSocket::bind(back).expect("forwarder back");
            (f, b)
        });
        for s in [&front_sock, &back_sock] {
            s.set_read_timeout(Some(Duration::from_millis(20)))
                .expect("timeout");
        }
        let front_sock = Arc::new(front_sock);
        let back_sock = Arc::new(back_sock);
        let stop = Arc::new(AtomicBool::new(false));
        let crossed = Arc::new(Crossed::default());
        let queue = Arc::new((Mutex::new(BinaryHeap::<Due>::new()), Condvar::new()));
        let client: Arc<Mutex<Option<std::net::SocketAddr>>> = Arc::new(Mutex::new(None));
        let rng = Arc::new(Mutex::new(crate::rng::Rng::new(impairment.seed)));
        let seq = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut threads = Vec::new();
        for to_target in [true, false] {
            let from = if to_target {
                front_sock.clone()
            } else {
                back_sock.clone()
            };
            let (stop, crossed, queue, client, rng, seq) = (
                stop.clone(),
                crossed.clone(),
                queue.clone(),
                client.clone(),
                rng.clone(),
                seq.clone(),
            );
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, src)) = from.recv_from(&mut buf) else {
                        continue;
                    };
                    if to_target {
                        *client.lock().unwrap() = Some(src);
                    }
                    let (drop_it, extra) = {
                        let mut rng = rng.lock().unwrap();
                        let drop_it = rng.below(100) < impairment.loss_percent;
                        let jitter = impairment.jitter.as_micros() as u64;
                        let extra = if jitter == 0 { 0 } else { rng.below(jitter) };
                        (drop_it, Duration::from_micros(extra))
                    };
                    if drop_it {
                        crossed.dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let due = Due {
                        at: Instant::now() + impairment.delay + extra,
                        seq: seq.fetch_add(1, Ordering::Relaxed),
                        to_target,
                        bytes: buf[..n].to_vec(),
                    };
                    let (lock, wake) = &*queue;
                    lock.lock().unwrap().push(due);
                    wake.notify_one();
                }
            }));
        }
        {
            let (stop, crossed, queue, client) =
                (stop.clone(), crossed.clone(), queue.clone(), client.clone());
            threads.push(std::thread::spawn(move || {
                let (lock, wake) = &*queue;
                let mut heap = lock.lock().unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::now();
                    let wait = match heap.peek() {
                        Some(d) if d.at <= now => Duration::ZERO,
                        Some(d) => d.at - now,
                        None => Duration::from_millis(20),
                    };
                    if !wait.is_zero() {
                        heap = wake
                            .wait_timeout(heap, wait.min(Duration::from_millis(20)))
                            .unwrap()
                            .0;
                        continue;
                    }
                    let due = heap.pop().expect("peeked");
                    let sent = if due.to_target {
                        back_sock.send_to(&due.bytes, target).is_ok()
                    } else if let Some(to) = *client.lock().unwrap() {
                        front_sock.send_to(&due.bytes, to).is_ok()
                    } else {
                        false
                    };
                    if sent {
                        crossed.forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }));
        }
        Forwarder {
            stop,
            threads,
            crossed,
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A UDP socket on a host that counts every datagram sent to it (to show nothing was).
pub struct Listener {
    pub addr: std::net::SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    count: std::sync::Arc<std::sync::atomic::AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Listener {
    pub fn start(host: &Host, addr: std::net::SocketAddr) -> Listener {
        let sock = made_on(host, move || {
            std::net::UdpSocket::bind(addr).expect("listener")
        });
        Listener::counting(sock)
    }

    fn counting(sock: std::net::UdpSocket) -> Listener {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        sock.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = sock.local_addr().expect("bound");
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let count = std::sync::Arc::new(AtomicU64::new(0));
        let (s, c) = (stop.clone(), count.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !s.load(Ordering::Relaxed) {
                if sock.recv_from(&mut buf).is_ok() {
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Listener {
            addr,
            stop,
            count,
            thread: Some(thread),
        }
    }

    /// A listener for a multicast `group` (address and port) on the link of `interface` (the
    /// host's address there): what any device on a LAN hears.
    pub fn multicast(host: &Host, group: std::net::SocketAddr, interface: &str) -> Listener {
        let std::net::IpAddr::V4(ip) = group.ip() else {
            panic!("IPv4 groups only")
        };
        let iface: std::net::Ipv4Addr = interface.parse().expect("an IPv4 address");
        let port = group.port();
        let sock = made_on(host, move || {
            let s = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("multicast listener");
            s.join_multicast_v4(&ip, &iface).expect("join the group");
            s
        });
        Listener::counting(sock)
    }

    pub fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
