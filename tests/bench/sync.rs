//! `duet-sync-bench`: time whole `duet sync` processes between two paired
//! homes on loopback (relays disabled).
//!
//! ```text
//! cargo build --release -p duet-cli -p duet-tests
//! target/release/duet-sync-bench [--items N] [--runs R] [--duet PATH] [--link-mbit M]
//! ```
//!
//! Alex's journal gets N generated items (one Automerge change each). Sam
//! runs `duet serve`; then Alex's first `duet sync` (all N items travel) is
//! timed, and after that R times: Alex writes one entry, and `duet sync` is
//! timed as a whole process, with the bytes it reports on the wire. Last,
//! both serve and a live push (write on one side, arrival on the other) is
//! timed: the "within a second or two" promise of `duet serve`.
//!
//! Bytes are counted twice: duet's own frames (what `sync --json` reports) and the IP packets
//! the whole exchange puts on the loopback interface (connection and path setup included). For
//! the second the bench runs itself in a network namespace of its own (`unshare -n`, as root),
//! where nothing else uses loopback; where it cannot, it says so and counts frames only.
//!
//! `--link-mbit M` times the first sync alone, over a link of M Mbit/s: a token bucket
//! (`tc qdisc ... tbf`) on the loopback interface of the bench's own namespace, set after
//! pairing. Beside it, what the link alone needs for the session's IP bytes: the floor.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use duet_tests::TestEnv;
use duet_tests::launcher::Launcher;
use duet_tests::pairing::{interrupt, pair, serve};

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn p90(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 9 / 10).min(v.len() - 1)]
}

/// How many of the partner's items `duet status --json` counts, every kind together.
fn partner_items(status: &serde_json::Value) -> usize {
    status["counts"]["partner"].as_object().map_or(0, |kinds| {
        kinds.values().filter_map(|n| n.as_u64()).sum::<u64>() as usize
    })
}

fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Bytes and packets the loopback interface has received, from `/proc/net/dev` (IP packets as
/// the interface counts them), when this process has a network namespace of its own.
fn loopback(own_namespace: bool) -> Option<(u64, u64)> {
    if !own_namespace {
        return None;
    }
    let dev = std::fs::read_to_string("/proc/net/dev").ok()?;
    let line = dev.lines().find(|l| l.trim_start().starts_with("lo:"))?;
    let mut counters = line
        .trim_start()
        .trim_start_matches("lo:")
        .split_whitespace()
        .map(|n| n.parse().ok());
    Some((counters.next()??, counters.next()??))
}

/// Run this bench again inside a network namespace of its own with loopback up, if it can
/// (root, `unshare`, `ip`); returns only if it cannot.
fn reexec_in_own_namespace(args: &[String]) {
    let can = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !can {
        eprintln!(
            "duet-sync-bench: no network namespace of its own here (needs root): IP bytes are not \
             counted, only duet's frames"
        );
        return;
    }
    let status = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\""])
        .args(args)
        .arg("--in-own-namespace")
        .status()
        .expect("unshare runs");
    std::process::exit(status.code().unwrap_or(1));
}

/// One timed `duet sync` process: wall time, duet's frames both ways, round trips, the IP
/// bytes on loopback (in a namespace of its own), peak memory, and what it printed.
struct SyncRun {
    ms: f64,
    frames: u64,
    round_trips: u64,
    ip: Option<u64>,
    packets: Option<u64>,
    rss_kib: u64,
    report: serde_json::Value,
}

fn sync_once(launcher: &mut Launcher, env: &TestEnv, own_namespace: bool) -> SyncRun {
    let cmd = env.duet(["sync", "--json", "--timeout", "60"]).command();
    timed_sync(launcher, env, &cmd, own_namespace)
}

/// Runs `cmd`, a `duet sync --json` (or a profiler running one), and reads what it reported.
fn timed_sync(
    launcher: &mut Launcher,
    env: &TestEnv,
    cmd: &std::process::Command,
    own_namespace: bool,
) -> SyncRun {
    let out = env.root().join("sync-out.json");
    let before = loopback(own_namespace);
    let run = launcher.run(cmd, Some(&out));
    let moved = before
        .zip(loopback(own_namespace))
        .map(|((bytes, packets), (b, p))| (b - bytes, p - packets));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(run.ok, "duet sync failed: {text}");
    let report: serde_json::Value = serde_json::from_str(&text).expect("sync --json");
    let n = |k: &str| report[k].as_u64().unwrap_or(0);
    SyncRun {
        ms: run.wall.as_secs_f64() * 1000.0,
        frames: n("bytes_sent") + n("bytes_received"),
        round_trips: report["reached"][0]["round_trips"].as_u64().unwrap_or(0),
        ip: moved.map(|(bytes, _)| bytes),
        packets: moved.map(|(_, packets)| packets),
        rss_kib: run.rss_kib,
        report,
    }
}

/// The first sync alone, over a link of `mbit` Mbit/s (a token bucket on this namespace's
/// loopback interface), against what the link needs for its IP bytes.
fn first_sync_over_a_link(
    launcher: &mut Launcher,
    alex: &TestEnv,
    mbit: u64,
    own_namespace: bool,
    (items, snapshot): (usize, u64),
    json_out: Option<&std::path::Path>,
) {
    if !own_namespace {
        eprintln!("duet-sync-bench: --link-mbit needs a network namespace of its own (root)");
        std::process::exit(1);
    }
    let rate = format!("{mbit}mbit");
    let shaped = std::process::Command::new("tc")
        .args(["qdisc", "add", "dev", "lo", "root", "tbf", "rate", &rate])
        .args(["burst", "256kb", "latency", "200ms"])
        .status()
        .is_ok_and(|s| s.success());
    if !shaped {
        eprintln!("duet-sync-bench: `tc qdisc add ... tbf` failed (iproute2, sch_tbf)");
        std::process::exit(1);
    }
    let first = sync_once(launcher, alex, own_namespace);
    let ip = first.ip.unwrap_or(0);
    let floor_ms = ip as f64 * 8.0 / (mbit as f64 * 1e6) * 1000.0;
    println!(
        "first sync of {items} items over a {mbit} Mbit/s link: {:.0} ms, {ip} IP bytes, which \
         the link alone needs {floor_ms:.0} ms for ({:.2}x)",
        first.ms,
        first.ms / floor_ms.max(1e-9),
    );
    let results = serde_json::json!({
        "bench": "duet-sync-bench",
        "items": items,
        "snapshot_bytes": snapshot,
        "link_mbit": mbit,
        "first_sync": {
            "ms": first.ms,
            "frames": first.frames,
            "ip_bytes": ip,
            "link_floor_ms": floor_ms,
        },
    });
    if let Some(path) = json_out {
        std::fs::write(path, format!("{results:#}\n")).expect("writing the JSON report");
    }
}

/// A long-running process's peak memory so far (KiB), from `/proc`.
fn peak_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Median and spread of several runs of one journey, as JSON and as a line.
fn journey(label: &str, runs: &[SyncRun]) -> serde_json::Value {
    let ms: Vec<f64> = runs.iter().map(|r| r.ms).collect();
    let (median_ms, p90_ms) = (median(ms.clone()), p90(ms.clone()));
    let min_ms = ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max_ms = ms.iter().copied().fold(0.0, f64::max);
    // The median of a figure every run has, or of one only counted in a namespace of its own.
    let median_of = |f: &dyn Fn(&SyncRun) -> Option<u64>| {
        let v: Vec<f64> = runs.iter().filter_map(|r| f(r).map(|n| n as f64)).collect();
        (!v.is_empty()).then(|| median(v))
    };
    let frames = median_of(&|r| Some(r.frames)).unwrap_or(0.0);
    let trips = median_of(&|r| Some(r.round_trips)).unwrap_or(0.0);
    let ip = median_of(&|r| r.ip);
    let packets = median_of(&|r| r.packets);
    let rss = runs.iter().map(|r| r.rss_kib).max().unwrap_or(0);
    println!(
        "{label}: median {median_ms:.1} ms (p90 {p90_ms:.1}, min {min_ms:.1}), {frames:.0} bytes \
         of frames, {trips:.0} round trips, {}, peak {:.1} MiB ({} runs)",
        ip.zip(packets)
            .map_or("IP bytes not counted".to_owned(), |(b, p)| format!(
                "{b:.0} IP bytes in {p:.0} packets"
            )),
        rss as f64 / 1024.0,
        runs.len()
    );
    serde_json::json!({
        "median_ms": median_ms,
        "p90_ms": p90_ms,
        "min_ms": min_ms,
        "max_ms": max_ms,
        "frames": frames,
        "round_trips": trips,
        "ip_bytes": ip,
        "ip_packets": packets,
        "peak_rss_kib": rss,
        "runs": runs.len(),
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let own_namespace = args.iter().any(|a| a == "--in-own-namespace");
    if !own_namespace && std::env::var_os("DUET_BENCH_NO_NAMESPACE").is_none() {
        reexec_in_own_namespace(&args);
    }
    // Forked while the bench is small: every `duet sync`'s peak memory is then its own.
    let mut launcher = Launcher::start();
    let items: usize = arg(&args, "--items")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runs: usize = arg(&args, "--runs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let json_out = arg(&args, "--json").map(PathBuf::from);
    let link_mbit: Option<u64> = arg(&args, "--link-mbit").and_then(|v| v.parse().ok());
    let export_out = arg(&args, "--export").map(PathBuf::from);
    let bin = match arg(&args, "--duet")
        .map(duet_tests::absolute)
        .map_or_else(duet_tests::sibling_duet, Ok)
    {
        Ok(bin) => bin,
        Err(why) => {
            eprintln!("duet-sync-bench: {why}");
            std::process::exit(1);
        }
    };

    let alex = TestEnv::new(bin.clone()).with_real_clock();
    let sam = TestEnv::new(bin.clone()).with_real_clock();
    let _ = alex.duet(["init", "--name", "Alex"]).ok();
    let _ = sam.duet(["init", "--name", "Sam"]).ok();
    pair(&alex, &sam);

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let generated = duet_tests::generate::populate(alex.home(), items, now_ms - 60_000, 7)
        .expect("generating the journal");
    alex.duet(["list", "-n", "1"]).ok();
    // Generating the journal leaves hundreds of megabytes for the kernel to write back; a first
    // sync timed while that drains waits behind it (its synced writes varied 0.1-0.4 s run to
    // run). Flushed first, as a journal a person has had for a while is.
    #[allow(unsafe_code)]
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe {
        libc::sync();
    }
    let snapshot = dir_bytes(&alex.journal_dir());
    println!(
        "journal: {} items in {} volumes, {} bytes of snapshots",
        generated.items, generated.volumes, snapshot
    );
    // The same items for the automerge-repo bench (bench/automerge-repo), as duet exports them.
    if let Some(path) = &export_out {
        let cmd = alex.duet(["export", "--format", "json"]).command();
        assert!(launcher.run(&cmd, Some(path)).ok, "duet export");
    }

    let (server, lines) = serve(&sam);

    // DUET_BENCH_PERF_SERVE=FILE records the listening side of the first sync.
    let perf_serve = std::env::var("DUET_BENCH_PERF_SERVE").ok().map(|out| {
        let child = std::process::Command::new("perf")
            .args([
                "record",
                "--call-graph",
                "dwarf,16384",
                "-o",
                &out,
                "-p",
                &server.id().to_string(),
            ])
            .spawn()
            .expect("perf");
        std::thread::sleep(Duration::from_millis(500));
        child
    });
    let serve_before = peak_kib(server.id());
    if let Some(mbit) = link_mbit {
        let json = json_out.as_deref();
        first_sync_over_a_link(
            &mut launcher,
            &alex,
            mbit,
            own_namespace,
            (items, snapshot),
            json,
        );
        interrupt(server);
        return;
    }
    let first = if let Ok(out) = std::env::var("DUET_BENCH_PERF") {
        // The same sync under `perf record` (its peak memory is then perf's).
        let cmd = alex.duet(["sync", "--json", "--timeout", "60"]).command();
        let mut perf = std::process::Command::new("perf");
        perf.args(["record", "-g", "-o", &out, "--"])
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            if let Some(v) = v {
                perf.env(k, v);
            }
        }
        timed_sync(&mut launcher, &alex, &perf, own_namespace)
    } else {
        sync_once(&mut launcher, &alex, own_namespace)
    };
    let serve_peak = peak_kib(server.id());
    println!(
        "first sync of {items} items: {:.0} ms, {} bytes of frames ({:.3}x the snapshots), \
         {} round trips, {}, peak memory {:.1} MiB (sync) and {:.1} MiB (serve; {:.1} MiB before)",
        first.ms,
        first.frames,
        first.frames as f64 / snapshot.max(1) as f64,
        first.round_trips,
        first
            .ip
            .map_or("IP bytes not counted".to_owned(), |b| format!(
                "{b} IP bytes"
            )),
        first.rss_kib as f64 / 1024.0,
        serve_peak as f64 / 1024.0,
        serve_before as f64 / 1024.0,
    );
    if let Some(perf) = perf_serve {
        interrupt(perf);
    }
    // Counted from status, not list: the partner's answers stay hidden from Sam (who has
    // answered none of the questions), yet they arrived.
    let got = sam.duet(["status", "--json"]).ok();
    let have = partner_items(&got.json());
    if have != items {
        eprintln!("{}", got.stderr);
        for line in lines.try_iter() {
            eprintln!("serve: {line}");
        }
        panic!("Sam has {have} of {items} items after the first sync");
    }
    let mut results = serde_json::json!({
        "bench": "duet-sync-bench",
        "items": items,
        "runs": runs,
        "snapshot_bytes": snapshot,
        "ip_counted": own_namespace,
        "first_sync": {
            "ms": first.ms,
            "frames": first.frames,
            "round_trips": first.round_trips,
            "ip_bytes": first.ip,
            "sync_peak_rss_kib": first.rss_kib,
            "serve_peak_rss_kib": serve_peak,
            "frames_per_snapshot_byte": first.frames as f64 / snapshot.max(1) as f64,
        },
    });

    // One new entry each time, then nothing changed, in interleaved rounds.
    let (mut one_new, mut nothing) = (Vec::new(), Vec::new());
    for n in 0..runs {
        alex.write(&format!(
            "one more little entry, number {n}, after a long day"
        ));
        one_new.push(sync_once(&mut launcher, &alex, own_namespace));
        let idle = sync_once(&mut launcher, &alex, own_namespace);
        let came = idle.report["reached"][0]["bytes_received"]
            .as_u64()
            .unwrap_or(0);
        assert!(came < 4096, "nothing changed, yet {came} bytes came");
        nothing.push(idle);
    }
    std::thread::sleep(Duration::from_millis(200));
    let got = sam.duet(["status", "--json"]).ok().json();
    assert_eq!(partner_items(&got), items + runs, "every new entry arrived");
    results["one_new_entry"] = journey(
        &format!("sync with one new entry on top of {items}"),
        &one_new,
    );
    results["nothing_changed"] = journey(
        &format!("sync with nothing changed, on top of {items}"),
        &nothing,
    );
    interrupt(server);

    // Apart: 50 entries on each side while neither can reach the other, then they meet.
    for n in 0..50 {
        alex.write(&format!("written apart by Alex, number {n}"));
        sam.write(&format!("written apart by Sam, number {n}"));
    }
    let (server, _lines) = serve(&sam);
    let apart = sync_once(&mut launcher, &alex, own_namespace);
    let got = sam.duet(["status", "--json"]).ok().json();
    assert_eq!(partner_items(&got), items + runs + 50, "Alex's 50 arrived");
    let new_for_alex = apart.report["new"]["entry"].as_u64().unwrap_or(0);
    assert_eq!(new_for_alex, 50, "Sam's 50 arrived: {}", apart.report);
    results["apart_50_each"] = journey(
        &format!("50 entries written apart on each side, on top of {items}, then meeting"),
        std::slice::from_ref(&apart),
    );

    // Live push: both serve; how long from Alex's `duet write` returning until Sam's home
    // holds the entry (target: under 2 s; checked here, not in the test suite).
    let (alex_server, _alex_lines) = serve(&alex);
    // Past serve's first push (1.5 s after it starts), so each run times a push as it goes once
    // serve runs, not the wait before its first.
    std::thread::sleep(Duration::from_millis(2000));
    let mut pushes = Vec::new();
    for n in 0..runs.min(10) {
        let body = format!("pushed live, number {n}");
        alex.write(&body);
        let written = Instant::now();
        while written.elapsed() < Duration::from_secs(30) {
            let newest = sam.bodies(&["--author", "partner", "-n", "1"]);
            if newest.first() == Some(&body) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            written.elapsed() < Duration::from_secs(30),
            "live push {n} arrived"
        );
        pushes.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "live push with both serving (write to arrival, polled every 20 ms): median {:.0} ms, \
         p90 {:.0} ms ({} runs; target under 2000 ms)",
        median(pushes.clone()),
        p90(pushes.clone()),
        pushes.len()
    );
    interrupt(alex_server);
    interrupt(server);
    results["live_push"] = serde_json::json!({
        "median_ms": median(pushes.clone()),
        "p90_ms": p90(pushes.clone()),
        "runs": pushes.len(),
    });

    // Three hops: Alex links an always-on home device; the laptop writes one entry and syncs with
    // the home device only, then Sam's laptop syncs with the home device only. Per hop, the
    // session's own time and bytes (the whole process also waits a moment for devices that are
    // away, which a direct sync between two devices does not).
    let home = TestEnv::new(bin).with_real_clock();
    duet_tests::pairing::link(&alex, &home, "home");
    // `-v`: if a hop fails, what the home device's `serve` did is printed with it.
    let (home_server, home_lines) = duet_tests::pairing::serve_by(home.duet(["-v", "serve"]));
    let started = Instant::now();
    alex.duet(["sync", "--json", "--timeout", "60"]).ok();
    println!(
        "first sync of {items} items to a newly linked home device: {:.0} ms (whole process)",
        started.elapsed().as_secs_f64() * 1000.0
    );
    // Sam hears of the home device (and where it is) from Alex once.
    let (alex_server, _alex_lines) = serve(&alex);
    sam.duet(["sync", "--timeout", "30"]).ok();
    interrupt(alex_server);
    let reached = sam.duet(["-v", "sync", "--timeout", "60"]).run();
    if !reached.status.success() {
        let served: Vec<String> = home_lines.try_iter().collect();
        panic!(
            "Sam could not reach the home device.\nSam's sync:\n{}\nthe home device's serve:\n{}",
            reached.stderr,
            served.join("\n")
        );
    }
    let hop = |env: &TestEnv| -> (f64, f64, f64) {
        let started = Instant::now();
        let out = env.duet(["sync", "--json", "--timeout", "30"]).ok().json();
        let whole = started.elapsed().as_secs_f64() * 1000.0;
        let r = &out["reached"][0];
        let bytes =
            r["bytes_sent"].as_u64().unwrap_or(0) + r["bytes_received"].as_u64().unwrap_or(0);
        (r["ms"].as_f64().unwrap_or(f64::NAN), bytes as f64, whole)
    };
    let (mut first_hop, mut second_hop) = (Vec::new(), Vec::new());
    for n in 0..runs.min(10) {
        alex.write(&format!("through the home device, number {n}"));
        first_hop.push(hop(&alex));
        second_hop.push(hop(&sam));
    }
    let got = sam.duet(["status", "--json"]).ok().json();
    assert!(
        partner_items(&got) >= items + runs + runs.min(10),
        "every hop arrived"
    );
    for (name, v) in [
        ("laptop -> home device", &first_hop),
        ("home device -> Sam", &second_hop),
    ] {
        println!(
            "one new entry on top of {items}, {name}: session median {:.1} ms, median {:.0} bytes; \
             whole process median {:.0} ms ({} runs)",
            median(v.iter().map(|h| h.0).collect()),
            median(v.iter().map(|h| h.1).collect()),
            median(v.iter().map(|h| h.2).collect()),
            v.len()
        );
    }
    interrupt(home_server);
    if let Some(path) = json_out {
        std::fs::write(&path, format!("{results:#}\n")).expect("writing the JSON report");
    }
}
