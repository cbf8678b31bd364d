//! `duet-bench`: how long whole `duet` processes take on a big journal.
//!
//! ```text
//! duet-bench [--items N] [--runs R] [--duet PATH] [--seed S] [--common WORD] [--keep]
//! ```
//!
//! Builds a journal of N items in a temporary home (through the library,
//! shaped like real use: see `duet_tests::generate`), warms the cache with
//! one `duet list -n 1`, then times R rounds of `duet write`, `duet list -n
//! 20`, `duet list --contains <rare word>`, `duet list --contains <common
//! word>`, `duet week`, `duet pulse` and `duet question`, each a fresh process, and
//! prints median and p90. A partner's journal of as many items sits beside mine.

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use duet_tests::generate::{self, RARE_COUNT, RARE_WORD};
use duet_tests::rng::Rng;
use duet_tests::{DuetCommand, TestEnv};

struct Options {
    items: usize,
    runs: usize,
    duet: Option<PathBuf>,
    seed: u64,
    common: String,
    keep: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: duet-bench [--items N] [--runs R] [--duet PATH] [--seed S] [--common WORD] [--keep]\n\
         defaults: --items 10000 --runs 30 --duet <dir of duet-bench>/duet --seed 1 --common dinner"
    );
    std::process::exit(2)
}

fn parse_args() -> Options {
    let mut o = Options {
        items: 10_000,
        runs: 30,
        duet: None,
        seed: 1,
        common: "dinner".into(),
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--items" => o.items = value().parse().unwrap_or_else(|_| usage()),
            "--runs" => o.runs = value().parse().unwrap_or_else(|_| usage()),
            "--duet" => o.duet = Some(PathBuf::from(value())),
            "--seed" => o.seed = value().parse().unwrap_or_else(|_| usage()),
            "--common" => o.common = value(),
            "--keep" => o.keep = true,
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if o.runs == 0 {
        usage();
    }
    o
}

/// Run a prepared command with its output discarded and return its wall time.
fn time(cmd: DuetCommand) -> Duration {
    let mut cmd = cmd.command();
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let start = Instant::now();
    let status = cmd.status().expect("running duet");
    let took = start.elapsed();
    assert!(status.success(), "{cmd:?} failed: {status}");
    took
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The value at quantile `q` (nearest rank) of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn main() -> ExitCode {
    let o = parse_args();
    let bin = match o.duet.clone().map_or_else(duet_tests::sibling_duet, Ok) {
        Ok(bin) if bin.is_file() => bin,
        Ok(bin) => {
            eprintln!("duet-bench: no duet binary at {}", bin.display());
            return ExitCode::FAILURE;
        }
        Err(why) => {
            eprintln!("duet-bench: {why} (for the bench: `cargo build --release -p duet-cli`)");
            return ExitCode::FAILURE;
        }
    };
    let env = TestEnv::new(bin.clone()).with_real_clock();
    env.duet(["init", "--name", "Bench"]).ok();

    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as i64;
    let start = Instant::now();
    let generated = match generate::populate(env.home(), o.items, now_ms, o.seed) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("duet-bench: generating the journal failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The partner's journal, as a sync would have brought it: as many items again.
    let partner_journal = duet_core::JournalId(Rng::new(o.seed ^ 0x5a3).bytes());
    let theirs = match generate::populate_journal(
        env.home(),
        partner_journal,
        o.items,
        now_ms,
        o.seed ^ 0x5a3,
    ) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("duet-bench: generating the partner's journal failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let home = duet_store::Home::new(env.home());
    let partner = duet_store::Partner {
        name: "Partner".into(),
        endpoint_id: "0".repeat(64),
        journal: partner_journal,
        addrs: vec![],
        relay_url: None,
        paired_at: now_ms,
        paired_epoch: None,
        last_sync: None,
        unpaired: false,
        person: None,
    };
    if let Err(e) = home.set_partner(&partner) {
        eprintln!("duet-bench: recording the partner failed: {e}");
        return ExitCode::FAILURE;
    }
    let gen_time = start.elapsed();
    let journal_bytes = dir_bytes(&env.home().join("journals"));

    let warm = time(env.duet(["list", "-n", "1"]));
    let cache_bytes = dir_bytes(&env.home().join("cache"));

    // Sanity: the rare word is found exactly where it was planted.
    let found = env.list_json(&["--contains", RARE_WORD]).len();
    if found != generated.rare.len() + theirs.rare.len() {
        eprintln!(
            "duet-bench: `list --contains {RARE_WORD}` found {found} items, expected {}",
            generated.rare.len() + theirs.rare.len()
        );
        return ExitCode::FAILURE;
    }
    let common_hits = env.list_json(&["--contains", &o.common]).len();

    let labels = [
        "write \"<~600 bytes>\"".to_owned(),
        "list -n 20".to_owned(),
        format!("list --contains {RARE_WORD}"),
        format!("list --contains {}", o.common),
        "week".to_owned(),
        "pulse".to_owned(),
        "question".to_owned(),
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::with_capacity(o.runs); labels.len()];
    let mut rng = Rng::new(o.seed ^ 0xbe9c);
    // Interleaved rounds: each list runs right after a write, as in use.
    for _ in 0..o.runs {
        let body = generate::prose(&mut rng, 600);
        samples[0].push(time(env.duet(["write", "--", &body])));
        samples[1].push(time(env.duet(["list", "-n", "20"])));
        samples[2].push(time(env.duet(["list", "--contains", RARE_WORD])));
        samples[3].push(time(env.duet(["list", "--contains", &o.common])));
        samples[4].push(time(env.duet(["week"])));
        samples[5].push(time(env.duet(["pulse"])));
        samples[6].push(time(env.duet(["question"])));
    }

    println!("duet-bench: {}", bin.display());
    println!(
        "journals: {} items of mine in {} volumes and as many of the partner's \
         (generated in {:.1} s), {} of mine hold `{RARE_WORD}`, {} items hold `{}`",
        generated.items,
        generated.volumes,
        gen_time.as_secs_f64(),
        generated.rare.len().min(RARE_COUNT),
        common_hits,
        o.common,
    );
    println!(
        "on disk: journal files {}, cache {} (first `list -n 1`, which builds it: {:.0} ms)",
        mib(journal_bytes),
        mib(cache_bytes),
        ms(warm)
    );
    println!("{} runs each, whole processes, wall time:", o.runs);
    println!(
        "  {:<32} {:>9} {:>9} {:>9}",
        "command", "median", "p90", "min"
    );
    for (label, s) in labels.iter().zip(samples.iter_mut()) {
        s.sort();
        println!(
            "  {:<32} {:>6.1} ms {:>6.1} ms {:>6.1} ms",
            format!("duet {label}"),
            ms(quantile(s, 0.5)),
            ms(quantile(s, 0.9)),
            ms(s[0])
        );
    }
    if o.keep {
        println!("home kept in {}", env.keep().join("home").display());
    }
    ExitCode::SUCCESS
}
