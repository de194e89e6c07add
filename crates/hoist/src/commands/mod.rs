//! One module per subcommand; each has `Args` (its `--help`) and `run`.

pub mod analyze;
pub mod cat;
pub mod commit;
pub mod completions;
pub mod copy;
pub mod cp;
pub mod create;
pub mod diff;
pub mod export;
pub mod fsck;
pub mod gc;
pub mod history;
pub mod images;
pub mod import;
pub mod inspect;
pub mod inventory;
pub mod load;
pub mod login;
pub mod logout;
pub mod ls;
pub mod mount;
mod open;
mod output;
pub mod ps;
pub mod pull;
pub mod push;
pub mod registry;
pub mod rm;
pub mod rmi;
pub mod run;
pub mod save;
pub mod squash;
pub mod tag;
pub mod umount;
pub mod verify;

use std::path::PathBuf;

use anyhow::{Context, Result};
use hoist_core::Store;

use crate::cli::{Cli, Command};

/// What every command gets: the store location and the global flags.
#[derive(Debug)]
pub struct Ctx {
    /// The store root.
    pub root: PathBuf,
    /// `--quiet`.
    pub quiet: bool,
}

impl Ctx {
    /// Opens (creating on first use) the store.
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.root)
            .with_context(|| format!("opening the store at {}", self.root.display()))
    }
}

/// Parses an image name given on the command line (`busybox` = `docker.io/library/busybox:latest`).
pub fn image_name(n: &str) -> Result<hoist_format::reference::Reference> {
    hoist_format::reference::Reference::parse_normalized(n)
        .map(hoist_format::reference::Reference::with_default_tag)
        .with_context(|| format!("invalid image name {n:?}"))
}

/// Now as RFC 3339 with nanoseconds, trailing zeros trimmed, as Go formats `created`.
pub fn now_rfc3339() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, m, dd) = crate::ui::human::civil_from_days(secs.div_euclid(86400));
    let rem = secs.rem_euclid(86400);
    let mut s = format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos != 0 {
        s.push('.');
        s.push_str(format!("{nanos:09}").trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Dispatches to the subcommand.
pub fn run(cli: Cli) -> Result<()> {
    let ctx = Ctx {
        root: cli.root.clone().unwrap_or_else(Store::default_root),
        quiet: cli.quiet,
    };
    match cli.command {
        Command::Load(a) => load::run(a, &ctx),
        Command::Save(a) => save::run(a, &ctx),
        Command::Export(a) => export::run(a, &ctx),
        Command::Import(a) => import::run(a, &ctx),
        Command::Inventory(a) => inventory::run(a, &ctx),
        Command::Images(a) => images::run(a, &ctx),
        Command::Create(a) => create::run(a, &ctx),
        Command::Run(a) => run::run(a, &ctx),
        Command::Ps(a) => ps::run(a, &ctx),
        Command::Rm(a) => rm::run(a, &ctx),
        Command::Diff(a) => diff::run(a, &ctx),
        Command::Commit(a) => commit::run(a, &ctx),
        Command::Analyze(a) => analyze::run(a, &ctx),
        Command::Squash(a) => squash::run(a, &ctx),
        Command::Pull(a) => pull::run(a, &ctx),
        Command::Push(a) => push::run(a, &ctx),
        Command::Copy(a) => copy::run(a, &ctx),
        Command::Login(a) => login::run(a, &ctx),
        Command::Logout(a) => logout::run(a, &ctx),
        Command::Tag(a) => tag::run(a, &ctx),
        Command::Rmi(a) => rmi::run(a, &ctx),
        Command::Inspect(a) => inspect::run(a, &ctx),
        Command::History(a) => history::run(a, &ctx),
        Command::Fsck(a) => fsck::run(a, &ctx),
        Command::Gc(a) => gc::run(a, &ctx),
        Command::Verify(a) => verify::run(a, &ctx),
        Command::Ls(a) => ls::run(a, &ctx),
        Command::Cat(a) => cat::run(a, &ctx),
        Command::Cp(a) => cp::run(a, &ctx),
        Command::Mount(a) => mount::run(a, &ctx),
        Command::Umount(a) => umount::run(a, &ctx),
        Command::Completions(a) => completions::run(a),
    }
}
