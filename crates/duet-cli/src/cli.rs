//! Arguments, global options, and the map from errors to exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

use crate::commands;
use crate::output::Out;

#[derive(Parser, Debug)]
#[command(
    name = "duet",
    version,
    about = "A journal for two: write for yourselves, share with each other, sync device to device.",
    long_about = None,
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Where this device keeps its journal [default: the platform's data directory]
    #[arg(long, global = true, env = "DUET_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,
    /// Relay used to reach the partner when no direct path works: disabled, default, or a URL
    #[arg(long, global = true, env = "DUET_RELAY", value_name = "MODE")]
    pub relay: Option<String>,
    /// Local address to listen on, e.g. 0.0.0.0:0 or 127.0.0.1:4433
    #[arg(long, global = true, env = "DUET_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Find your devices on the local network by mDNS: on (the default) or off for silence
    #[arg(long, global = true, env = "DUET_LAN", value_name = "on|off")]
    pub lan: Option<String>,
    /// Say more about what happens (repeat for more)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only data and errors
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create this device's identity and an empty journal
    Init(commands::init::InitArgs),
    /// Write a journal entry (no text opens $EDITOR, `-` reads stdin)
    Write(commands::write::WriteArgs),
    /// Write a note of thanks to your partner (no text opens $EDITOR on a short guide)
    Thanks(commands::write::ThanksArgs),
    /// Say how you are: mood, energy, and what you need today
    Checkin(commands::checkin::CheckinArgs),
    /// Today's question for the two of you, and both answers once you have answered
    Question(commands::question::QuestionArgs),
    /// Answer today's question (your partner's answer opens once yours is saved)
    Answer(commands::question::AnswerArgs),
    /// The last seven days of both journals at a glance
    Week(commands::rituals::WeekArgs),
    /// The last 30 days against the 30 before, for your eyes only
    Pulse(commands::rituals::PulseArgs),
    /// This day in earlier months and years
    Memories(commands::rituals::MemoriesArgs),
    /// List items, newest first
    List(commands::list::ListArgs),
    /// Show one item in full
    Show(commands::show::ShowArgs),
    /// Change the text of one of your items
    Edit(commands::edit::EditArgs),
    /// Delete one of your items
    Delete(commands::edit::DeleteArgs),
    /// Star an item (yours or your partner's); --off removes the star
    Star(commands::edit::StarArgs),
    /// Export everything readable as JSON or Markdown
    Export(commands::export::ExportArgs),
    /// Who you are, your partner, counts and store size
    Status,
    /// Pair with your partner's device (once)
    #[command(subcommand)]
    Pair(commands::pair::PairCommand),
    /// Reach your partner once, sync both journals, and exit
    Sync(commands::sync::SyncArgs),
    /// Stay online: accept your partner and push your changes as they happen
    Serve(commands::serve::ServeArgs),
    /// Stop syncing with your partner
    Unpair(commands::unpair::UnpairArgs),
    /// Check every file; name what is damaged (--fix moves it aside, deleting nothing)
    Doctor(commands::doctor::DoctorArgs),
    /// Your devices and your partner's, as your person keys certified them
    #[command(subcommand)]
    Device(commands::device::DeviceCommand),
    /// Your recovery phrase: the words that bring your journal back on a new device
    #[command(subcommand)]
    Recovery(commands::init::RecoveryCommand),
}

/// How a program runs the network commands: `duet` hands them over ([`hand_over`]),
/// `duet-net` runs them ([`run_network`]).
pub type NetworkCommands = fn(&Global, &mut Out, NetworkCommand) -> anyhow::Result<()>;

/// The commands that reach other devices, which only `duet-net` links the code of.
#[derive(Debug)]
pub enum NetworkCommand {
    Pair(commands::pair::PairCommand),
    Sync(commands::sync::SyncArgs),
    Serve(commands::serve::ServeArgs),
    Device(commands::device::DeviceCommand),
}

/// Parse the arguments and run the command; `network` runs the network commands.
pub fn run(network: NetworkCommands) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if cli.global.verbose > 0 {
        // -v: what duet and iroh do; -vv: everything they say; -vvv: every packet's frames
        // too (or what RUST_LOG names).
        let filter = match cli.global.verbose {
            1 => tracing_subscriber::EnvFilter::new(
                "duet=info,duet_net=info,duet_store=info,iroh=info",
            ),
            2 => tracing_subscriber::EnvFilter::new("debug"),
            _ => tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("trace")),
        };
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(crate::output::stderr_color())
            .with_writer(std::io::stderr)
            .try_init();
    }
    let mut out = Out::new(cli.global.json, cli.global.quiet);
    match dispatch(cli, &mut out, network) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            out.error(&e);
            ExitCode::FAILURE
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

fn dispatch(cli: Cli, out: &mut Out, network: NetworkCommands) -> anyhow::Result<()> {
    // A network command is handed over before anything is read (the time zone, the clock):
    // `duet-net` reads them itself.
    let global = &cli.global;
    let ctx = || Context::new(global);
    match cli.command {
        Command::Init(args) => commands::init::run(&ctx()?, out, args),
        Command::Write(args) => commands::write::run_write(&ctx()?, out, args),
        Command::Thanks(args) => commands::write::run_thanks(&ctx()?, out, args),
        Command::Checkin(args) => commands::checkin::run(&ctx()?, out, args),
        Command::Question(args) => commands::question::run_question(&ctx()?, out, args),
        Command::Answer(args) => commands::question::run_answer(&ctx()?, out, args),
        Command::Week(args) => commands::rituals::run_week(&ctx()?, out, args),
        Command::Pulse(args) => commands::rituals::run_pulse(&ctx()?, out, args),
        Command::Memories(args) => commands::rituals::run_memories(&ctx()?, out, args),
        Command::List(args) => commands::list::run(&ctx()?, out, args),
        Command::Show(args) => commands::show::run(&ctx()?, out, args),
        Command::Edit(args) => commands::edit::run_edit(&ctx()?, out, args),
        Command::Delete(args) => commands::edit::run_delete(&ctx()?, out, args),
        Command::Star(args) => commands::edit::run_star(&ctx()?, out, args),
        Command::Export(args) => commands::export::run(&ctx()?, out, args),
        Command::Status => commands::status::run(&ctx()?, out),
        Command::Pair(cmd) => network(global, out, NetworkCommand::Pair(cmd)),
        Command::Sync(args) => network(global, out, NetworkCommand::Sync(args)),
        Command::Serve(args) => network(global, out, NetworkCommand::Serve(args)),
        Command::Unpair(args) => commands::unpair::run(&ctx()?, out, args),
        Command::Doctor(args) => commands::doctor::run(&ctx()?, out, args),
        Command::Device(cmd) => network(global, out, NetworkCommand::Device(cmd)),
        Command::Recovery(cmd) => commands::init::run_recovery(&ctx()?, out, cmd),
    }
}

/// `duet-net`: runs a network command in this process.
pub fn run_network(global: &Global, out: &mut Out, command: NetworkCommand) -> anyhow::Result<()> {
    let ctx = &Context::new(global)?;
    match command {
        NetworkCommand::Pair(cmd) => commands::pair::run(ctx, out, cmd),
        NetworkCommand::Sync(args) => commands::sync::run(ctx, out, args),
        NetworkCommand::Serve(args) => commands::serve::run(ctx, out, args),
        NetworkCommand::Device(cmd) => commands::device::run(ctx, out, cmd),
    }
}

/// The program that runs the network commands: `duet-net`, in the directory of this one.
pub const NETWORK_PROGRAM: &str = "duet-net";

/// `duet`: this process becomes `duet-net` beside it, with the same arguments, environment and
/// terminal (so the same process id, exit code and signals); it returns only when that fails.
pub fn hand_over(_: &Global, _: &mut Out, _: NetworkCommand) -> anyhow::Result<()> {
    let this = std::env::current_exe().context("cannot find where duet itself is")?;
    let program = this.with_file_name(format!("{NETWORK_PROGRAM}{}", std::env::consts::EXE_SUFFIX));
    let mut args = std::env::args_os();
    let mut command = std::process::Command::new(&program);
    if let Some(name) = args.next() {
        command_named(&mut command, name);
    }
    command.args(args);
    let error = become_program(command);
    anyhow::bail!(
        "cannot start {}: {error}; duet's network commands (pair, sync, serve, device) run \
         there: `cargo build --release` builds it beside duet, `cargo install --path \
         crates/duet-cli` installs both",
        program.display()
    )
}

/// The child keeps the name it was called by, so its messages name `duet` as the user typed it.
#[cfg(unix)]
fn command_named(command: &mut std::process::Command, name: std::ffi::OsString) {
    use std::os::unix::process::CommandExt as _;
    command.arg0(name);
}

#[cfg(not(unix))]
fn command_named(_: &mut std::process::Command, _: std::ffi::OsString) {}

/// Replace this process with `command`; returns only its failure to start.
#[cfg(unix)]
fn become_program(mut command: std::process::Command) -> std::io::Error {
    use std::os::unix::process::CommandExt as _;
    command.exec()
}

/// Where a process cannot be replaced: run `command` to its end and leave with its exit code.
#[cfg(not(unix))]
fn become_program(mut command: std::process::Command) -> std::io::Error {
    match command.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => e,
    }
}

/// This process's clock, for code that runs long after the command started (a sync inside
/// `serve`); set once when the command starts.
static CLOCK: std::sync::OnceLock<duet_net::Clock> = std::sync::OnceLock::new();

/// The clock of this process: pinned by `DUET_NOW` in tests, the system's otherwise.
pub fn clock() -> duet_net::Clock {
    *CLOCK.get_or_init(duet_net::Clock::system)
}

/// What every command needs: where the home is, what time it is.
pub struct Context {
    pub home: duet_store::Home,
    pub global: Global,
    /// When the command started; every item it writes carries this time.
    pub now: jiff::Timestamp,
    /// The clock that runs on from `now`, for what a long command does later (last sync).
    pub clock: duet_net::Clock,
    pub tz: jiff::tz::TimeZone,
}

impl Context {
    fn new(global: &Global) -> anyhow::Result<Context> {
        let root = match &global.home {
            Some(dir) => dir.clone(),
            None => directories::ProjectDirs::from("", "", "duet")
                .map(|dirs| dirs.data_dir().to_path_buf())
                .context("cannot find a data directory for duet; pass --home DIR")?,
        };
        // DUET_NOW pins the clock and DUET_SEED the ids, so tests and demos are reproducible.
        // The command's own moment is exactly DUET_NOW when pinned, however long the process
        // took to get here; the clock runs on from there for what happens later.
        let (clock, started) = match std::env::var("DUET_NOW") {
            Ok(text) if !text.is_empty() => {
                let pinned = text
                    .parse::<jiff::Timestamp>()
                    .with_context(|| format!("DUET_NOW=`{text}` is not an RFC 3339 time"))?;
                let ms = pinned.as_millisecond();
                (duet_net::Clock::starting_at(ms), ms)
            }
            _ => {
                let clock = duet_net::Clock::system();
                (clock, clock.now_ms())
            }
        };
        let _ = CLOCK.set(clock);
        match std::env::var("DUET_SEED") {
            Ok(text) if !text.is_empty() => {
                let seed = text.parse::<u64>().with_context(|| {
                    format!("DUET_SEED=`{text}` is not a number from 0 to 18446744073709551615")
                })?;
                duet_store::fsutil::seed_ids(seed);
            }
            _ => {}
        }
        Ok(Context {
            home: duet_store::Home::new(root),
            global: global.clone(),
            now: jiff::Timestamp::from_millisecond(started)
                .context("the system clock is outside the years duet understands")?,
            clock,
            tz: crate::dates::system_tz(),
        })
    }

    pub fn now_ms(&self) -> i64 {
        self.now.as_millisecond()
    }

    pub fn store(&self) -> anyhow::Result<duet_store::Store> {
        Ok(duet_store::Store::open(self.home.clone())?)
    }
}
