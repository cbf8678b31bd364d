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
//!
//! The floor for `write`, timed in the same rounds: this very binary started again as
//! `duet-bench --floor-write FILE TEXT`, a minimal process that appends the same ~700 bytes to a
//! file and fsyncs it. `duet write` is reported as a multiple of it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use duet_tests::TestEnv;
use duet_tests::generate::{self, RARE_COUNT, RARE_WORD};
use duet_tests::launcher::{Launcher, Run};
use duet_tests::rng::Rng;

struct Options {
    items: usize,
    runs: usize,
    duet: Option<PathBuf>,
    seed: u64,
    common: String,
    keep: bool,
    jrnl: Option<PathBuf>,
    json: Option<PathBuf>,
}

fn usage() -> ! {
    eprintln!(
        "usage: duet-bench [--items N] [--runs R] [--duet PATH] [--seed S] [--common WORD] [--keep] \
         [--jrnl PATH] [--json FILE]\n\
         defaults: --items 10000 --runs 30 --duet <dir of duet-bench>/duet --seed 1 --common dinner\n\
         --jrnl: a jrnl 4.6 executable (bench/setup-jrnl.sh installs one) to time on the same \
         entries, in the same rounds\n\
         --json: also write every figure to FILE (bench/run.sh makes docs/benchmarks.md from them)"
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
        jrnl: None,
        json: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--items" => o.items = value().parse().unwrap_or_else(|_| usage()),
            "--runs" => o.runs = value().parse().unwrap_or_else(|_| usage()),
            "--duet" => o.duet = Some(duet_tests::absolute(value())),
            "--seed" => o.seed = value().parse().unwrap_or_else(|_| usage()),
            "--common" => o.common = value(),
            "--keep" => o.keep = true,
            "--jrnl" => o.jrnl = Some(PathBuf::from(value())),
            "--json" => o.json = Some(PathBuf::from(value())),
            "-h" | "--help" => usage(),
            _ => usage(),
        }
    }
    if o.runs == 0 {
        usage();
    }
    o
}

/// The floor process: append `text` and a newline to `file`, fsync it, exit.
fn floor_write(file: &str, text: &str) -> ExitCode {
    use std::io::Write as _;
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.write_all(b"\n")?;
            f.sync_all()
        });
    match appended {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet-bench --floor-write: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Run a prepared command with its output discarded; its wall time and peak memory. It runs
/// once untimed first (warm), after the file system is flushed: no command pays for the
/// writeback of the one before (jrnl rewrites its whole file on every write, some 60 MB at
/// 100,000 entries), nor for pages the machine let go while another ran (this machine pages
/// out memory idle for a few seconds: any command, even `duet --version`, then takes 4×).
fn time(launcher: &mut Launcher, cmd: &std::process::Command) -> Run {
    let _ = std::process::Command::new("sync").status();
    assert!(launcher.run(cmd, None).ok, "{cmd:?} failed");
    let run = launcher.run(cmd, None);
    assert!(run.ok, "{cmd:?} failed");
    run
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// jrnl 4.6 with a journal of its own in the bench's temporary folder, holding my entries.
struct Jrnl {
    bin: PathBuf,
    home: PathBuf,
}

impl Jrnl {
    /// Writes jrnl's configuration and a journal file in its plain-text format with every item
    /// of mine (`duet export`), oldest first, then checks jrnl reads them all.
    fn set_up(bin: &Path, env: &TestEnv) -> Result<Jrnl, String> {
        let home = env.root().join("jrnl-home");
        let config_dir = home.join(".config").join("jrnl");
        std::fs::create_dir_all(&config_dir).map_err(|e| e.to_string())?;
        let journal = home.join("journal.txt");
        let config = format!(
            "colors:\n  body: none\n  date: none\n  tags: none\n  title: none\n\
             default_hour: 9\ndefault_minute: 0\neditor: ''\nencrypt: false\nhighlight: false\n\
             indent_character: '|'\njournals:\n  default:\n    journal: {}\nlinewrap: 79\n\
             tagsymbols: '#@'\ntemplate: false\ntimeformat: '%Y-%m-%d %H:%M'\nversion: v4.6\n",
            journal.display()
        );
        std::fs::write(config_dir.join("jrnl.yaml"), config).map_err(|e| e.to_string())?;
        let export = env.duet(["export", "--format", "json"]).ok().json();
        let mut text = String::new();
        let mut count = 0;
        for item in export["items"].as_array().into_iter().flatten() {
            if item["author"] != "me" {
                continue;
            }
            let at = item["created_at"].as_str().unwrap_or_default();
            let when = jiff::Timestamp::from_str(at)
                .map_err(|e| e.to_string())?
                .strftime("%Y-%m-%d %H:%M")
                .to_string();
            let body = item["body"].as_str().unwrap_or_default().replace('\n', " ");
            text.push_str(&format!("[{when}] {body}\n\n"));
            count += 1;
        }
        std::fs::write(&journal, text).map_err(|e| e.to_string())?;
        let j = Jrnl {
            bin: bin.to_path_buf(),
            home,
        };
        let out = j
            .command(&["-n", "100000000", "--format", "short"])
            .output()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        let listed = String::from_utf8_lossy(&out.stdout).lines().count();
        if !out.status.success() || listed != count {
            return Err(format!(
                "jrnl lists {listed} of the {count} entries written for it: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(j)
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = std::process::Command::new(&self.bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .env("TZ", "UTC")
            .env("NO_COLOR", "1")
            .args(args);
        cmd
    }
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
    let args: Vec<String> = std::env::args().collect();
    if let [_, flag, file, text] = args.as_slice()
        && flag == "--floor-write"
    {
        return floor_write(file, text);
    }
    // Forked while the bench is small: every command's peak memory is then its own.
    let mut launcher = Launcher::start();
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

    let warm = time(&mut launcher, &env.duet(["list", "-n", "1"]).command());
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

    // An item from the middle of the journal's time span, for `show` (which also looks for
    // its replies, everywhere).
    let mid_ms = generated.oldest_ms + (generated.newest_ms - generated.oldest_ms) / 2;
    let mid = jiff::Timestamp::from_millisecond(mid_ms)
        .map(|t| t.to_string())
        .unwrap_or_default();
    let middle = env.list_json(&["-n", "20", "--to", &mid]);
    let show_id = middle
        .get(10)
        .or(middle.first())
        .and_then(|i| i["id"].as_str())
        .unwrap_or_default()
        .to_owned();

    let jrnl = match o.jrnl.as_deref().map(|bin| Jrnl::set_up(bin, &env)) {
        None => None,
        Some(Ok(j)) => Some(j),
        Some(Err(e)) => {
            eprintln!("duet-bench: setting up jrnl failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let floor_file = env.root().join("floor.txt");
    let me = std::env::current_exe().expect("the bench's own path");
    let mut rng = Rng::new(o.seed ^ 0xbe9c);
    let common = o.common.clone();
    // Per scenario: its name, duet's arguments and jrnl's for the same thing, if any. `{body}`
    // stands for the round's ~600 bytes of prose.
    let scenarios: Vec<(String, Vec<String>, Option<Vec<String>>)> = [
        ("write", vec!["write", "--", "{body}"], Some(vec!["{body}"])),
        (
            "list -n 20",
            vec!["list", "-n", "20"],
            Some(vec!["-n", "20"]),
        ),
        (
            "list --contains (rare word)",
            vec!["list", "--contains", RARE_WORD],
            Some(vec!["-contains", RARE_WORD]),
        ),
        (
            "list --contains (common word)",
            vec!["list", "--contains", &common],
            Some(vec!["-contains", &common]),
        ),
        ("show ID", vec!["show", &show_id], None),
        ("status", vec!["status"], None),
        (
            "export --format json",
            vec!["export", "--format", "json"],
            Some(vec!["--export", "json"]),
        ),
        ("week", vec!["week"], None),
        ("pulse", vec!["pulse"], None),
        ("question", vec!["question"], None),
    ]
    .into_iter()
    .map(|(name, duet, jrnl)| {
        let owned = |v: Vec<&str>| v.into_iter().map(str::to_owned).collect::<Vec<_>>();
        (name.to_owned(), owned(duet), jrnl.map(owned))
    })
    .collect();
    let mut samples: Vec<Vec<Run>> = vec![Vec::with_capacity(o.runs); scenarios.len()];
    let mut jrnl_samples: Vec<Vec<Run>> = vec![Vec::with_capacity(o.runs); scenarios.len()];
    let mut floor: Vec<Run> = Vec::with_capacity(o.runs);
    // Interleaved rounds: each list runs right after a write, as in use.
    for _ in 0..o.runs {
        let body = generate::prose(&mut rng, 600);
        let fill = |args: &[String]| -> Vec<String> {
            args.iter()
                .map(|a| {
                    if a == "{body}" {
                        body.clone()
                    } else {
                        a.clone()
                    }
                })
                .collect()
        };
        let mut floor_cmd = std::process::Command::new(&me);
        floor_cmd.arg("--floor-write").arg(&floor_file).arg(&body);
        floor.push(time(&mut launcher, &floor_cmd));
        for (i, (_, duet, theirs)) in scenarios.iter().enumerate() {
            samples[i].push(time(&mut launcher, &env.duet(fill(duet)).command()));
            if let (Some(j), Some(args)) = (&jrnl, theirs) {
                let args = fill(args);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                jrnl_samples[i].push(time(&mut launcher, &j.command(&args)));
            }
        }
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
        ms(warm.wall)
    );
    println!(
        "{} runs each, whole processes, wall time and peak memory:",
        o.runs
    );
    println!(
        "  {:<38} {:>9} {:>9} {:>9} {:>10}",
        "command", "median", "p90", "min", "peak RSS"
    );
    let floor_stats = Stats::of(&floor);
    floor_stats.print("floor: append ~700 B + fsync");
    let mut rows = Vec::new();
    for (i, (name, _, _)) in scenarios.iter().enumerate() {
        let ours = Stats::of(&samples[i]);
        ours.print(&format!("duet {name}"));
        let theirs = (!jrnl_samples[i].is_empty()).then(|| Stats::of(&jrnl_samples[i]));
        if let Some(t) = &theirs {
            t.print(&format!("jrnl, the same: {name}"));
            println!(
                "    duet is {:.1}x faster than jrnl here",
                t.median / ours.median.max(1e-9)
            );
        }
        if i == 0 {
            println!(
                "    duet write is {:.2}x the floor (medians of the same rounds)",
                ours.median / floor_stats.median.max(1e-9)
            );
        }
        rows.push(serde_json::json!({
            "scenario": name,
            "duet": ours.json(),
            "jrnl": theirs.as_ref().map(Stats::json),
        }));
    }
    if let Some(path) = &o.json {
        let report = serde_json::json!({
            "bench": "duet-bench",
            "items": generated.items,
            "partner_items": theirs.items,
            "volumes": generated.volumes,
            "runs": o.runs,
            "generated_s": gen_time.as_secs_f64(),
            "journal_bytes": journal_bytes,
            "cache_bytes": cache_bytes,
            "cache_build_ms": ms(warm.wall),
            "common_word": o.common,
            "common_hits": common_hits,
            "floor": floor_stats.json(),
            "rows": rows,
        });
        if let Err(e) = std::fs::write(path, format!("{report:#}\n")) {
            eprintln!("duet-bench: writing {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if o.keep {
        println!("home kept in {}", env.keep().join("home").display());
    }
    ExitCode::SUCCESS
}

/// Median, spread and peak memory of one scenario's runs.
struct Stats {
    median: f64,
    p90: f64,
    min: f64,
    max: f64,
    rss_kib: u64,
    runs: usize,
}

impl Stats {
    fn of(runs: &[Run]) -> Stats {
        let mut walls: Vec<Duration> = runs.iter().map(|r| r.wall).collect();
        walls.sort();
        Stats {
            median: ms(quantile(&walls, 0.5)),
            p90: ms(quantile(&walls, 0.9)),
            min: ms(walls[0]),
            max: ms(walls[walls.len() - 1]),
            rss_kib: runs.iter().map(|r| r.rss_kib).max().unwrap_or(0),
            runs: runs.len(),
        }
    }

    fn print(&self, label: &str) {
        println!(
            "  {:<38} {:>6.1} ms {:>6.1} ms {:>6.1} ms {:>7.1} MiB",
            label,
            self.median,
            self.p90,
            self.min,
            self.rss_kib as f64 / 1024.0
        );
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "median_ms": self.median, "p90_ms": self.p90, "min_ms": self.min,
            "max_ms": self.max, "peak_rss_kib": self.rss_kib, "runs": self.runs,
        })
    }
}
