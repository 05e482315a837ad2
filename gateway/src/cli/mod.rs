//! The `authgate` command line: one module per subcommand. `main.rs` parses [`Cli`] and calls
//! [`execute`]; each subcommand writes its own output and returns the process exit code.

mod backends;
mod check;
mod config_path;
mod explain;
mod hash_password;
mod health;
mod init;
mod keys;
mod lockouts;
mod password_input;
mod run;
mod schema;
pub(crate) mod services;
mod table;
mod users;

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

pub use init::Shape;
pub use keys::KeysAction;
pub use lockouts::LockoutsAction;
pub use users::UsersAction;

/// `authgate --version`: the crate version and the commit it was built from (`gateway/build.rs`).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("AUTHGATE_COMMIT"),
    ")"
);

/// A declarative, config-driven authentication gateway.
#[derive(Debug, Parser)]
#[command(name = "authgate", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    /// The config file. Without it: `GATEWAY_CONFIG`, `AUTHGATE_CONFIG`, `./gateway.yaml` when it
    /// exists, then `/etc/authgate/gateway.yaml`. Accepted before or after the subcommand.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "GATEWAY_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// The log filter (`info`, `debug`, `gateway=debug,info`...): overrides `RUST_LOG`, which
    /// overrides the config's `log.level`.
    #[arg(long, global = true, value_name = "FILTER", value_parser = parse_log_level)]
    pub log_level: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

fn parse_log_level(s: &str) -> Result<String, String> {
    tracing_subscriber::EnvFilter::try_new(s)
        .map(|_| s.to_string())
        .map_err(|e| format!("not a log filter: {e}"))
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve: load the config, build the chain, listen.
    Run(LoadArgs),
    /// Validate the config: print every error as `file:line:col: message` (exit 2), or the
    /// resolved chain and routes and which keys a reload cannot apply (exit 0).
    Check(CheckArgs),
    /// Write a commented starter config for a chosen shape.
    Init(InitArgs),
    /// List the registered backend types and their options.
    Backends,
    /// Run the chain for one login, bearer token or API key and print each backend's outcome
    /// and time.
    Explain(ExplainArgs),
    /// Hash a password with Argon2id (read from the terminal, or from stdin when piped).
    HashPassword,
    /// Print the JSON Schema of the config file (for editors).
    Schema,
    /// Manage the local user store (`users_db`).
    Users(UsersArgs),
    /// Manage the API keys of the local user store (`users_db`).
    Keys(KeysArgs),
    /// List or clear the brute-force lockouts in force (Redis store: directly; memory store:
    /// through the running gateway's admin listener).
    Lockouts(LockoutsArgs),
    /// Probe a running gateway: GET its `/healthz` (exit 0 on 2xx, 1 otherwise); for container
    /// health checks.
    Health(HealthArgs),
}

/// `authgate health`.
#[derive(Debug, Clone, Args)]
pub struct HealthArgs {
    /// The URL to GET (plain http://).
    #[arg(long, default_value = "http://127.0.0.1:9090/healthz")]
    pub url: String,
}

/// `authgate users`.
#[derive(Debug, Clone, Args)]
pub struct UsersArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: UsersAction,
}

/// `authgate lockouts`.
#[derive(Debug, Clone, Args)]
pub struct LockoutsArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: LockoutsAction,
}

/// `authgate keys`.
#[derive(Debug, Clone, Args)]
pub struct KeysArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: KeysAction,
}

/// `authgate init`.
#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// What the config authenticates against.
    #[arg(long, value_enum, default_value_t = Shape::Htpasswd)]
    pub shape: Shape,
    /// Where to write it (`-` for stdout); an existing file is never overwritten.
    #[arg(long, short = 'o', value_name = "FILE", default_value = "gateway.yaml")]
    pub output: PathBuf,
}

/// How strictly to load the config (`run`, `check`).
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Accept secrets written in a config file that other users can read (by default refused,
    /// as ssh refuses a private key others can read): `chmod 600` it, or use `env:` / `file:`.
    #[arg(long)]
    pub allow_insecure_config: bool,
}

/// `authgate check`.
#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// How strictly to load.
    #[command(flatten)]
    pub load: LoadArgs,
    /// The file a gateway runs now: list each key written differently there and whether a
    /// reload (SIGHUP) applies it or a restart is needed.
    #[arg(long, value_name = "OLD")]
    pub against: Option<PathBuf>,
}

/// `authgate explain`: one of `--user`, `--bearer`, `--api-key`.
#[derive(Debug, Clone, Args)]
#[group(required = true, multiple = false)]
pub struct ExplainArgs {
    /// The username to try; the password is asked for (or read from stdin when piped).
    #[arg(long, short = 'u')]
    pub user: Option<String>,
    /// Try a bearer token (`Authorization: Bearer`), asked for (or read from stdin when piped).
    #[arg(long)]
    pub bearer: bool,
    /// Try an API key as sent in header HEADER, asked for (or read from stdin when piped).
    #[arg(long, value_name = "HEADER")]
    pub api_key: Option<String>,
}

/// A subcommand failed in a way that is not a verdict (I/O, the terminal...).
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Reading input or writing output failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The backend registry is unusable (two types with one name).
    #[error(transparent)]
    Registry(#[from] auth_core::registry::RegistryError),
    /// Starting the gateway failed.
    #[error(transparent)]
    Server(#[from] crate::server::ServerError),
    /// The local user store failed.
    #[error(transparent)]
    Store(#[from] auth_backends::StoreError),
    /// Something else, with an operator-facing message.
    #[error("{0}")]
    Message(String),
}

/// Runs `cli`; returns the process exit code (0 success, 1 failure, 2 invalid or missing config).
pub fn execute(cli: Cli) -> Result<u8, CliError> {
    // Each command locks stdout for itself; `run` does not, since the server's threads print.
    let stdout = || std::io::stdout().lock();
    let Cli {
        config,
        log_level,
        command,
    } = cli;
    match command {
        Command::Run(args) => with_config(config, |p| {
            run::run(p, args.allow_insecure_config, log_level.as_deref())
        }),
        Command::Check(args) => with_config(config, |p| {
            check::check(
                p,
                args.load.allow_insecure_config,
                args.against.as_deref(),
                &mut stdout(),
            )
        }),
        Command::Init(args) => init::init(args.shape, &args.output, &mut stdout()),
        Command::Backends => backends::backends(&mut stdout()),
        Command::Explain(args) => {
            let what = match (args.user, args.bearer, args.api_key) {
                (Some(user), _, _) => explain::Presented::Password(user),
                (None, _, Some(header)) => explain::Presented::ApiKey(header),
                (None, _, None) => explain::Presented::Bearer,
            };
            with_config(config, |p| explain::explain(p, what, &mut stdout()))
        }
        Command::HashPassword => hash_password::hash_password(&mut stdout()),
        Command::Schema => schema::schema(&mut stdout()),
        Command::Users(args) => {
            with_config(config, |p| users::users(p, args.action, &mut stdout()))
        }
        Command::Keys(args) => with_config(config, |p| keys::keys(p, args.action, &mut stdout())),
        Command::Lockouts(args) => with_config(config, |p| {
            lockouts::lockouts(p, args.action, &mut stdout())
        }),
        Command::Health(args) => health::health(&args.url, &mut stdout()),
    }
}

/// Runs `command` on the config file found from `given` (see [`Cli::config`]); when there is
/// none, says where it looked and how to get one, and exits 2.
fn with_config(
    given: Option<PathBuf>,
    command: impl FnOnce(&Path) -> Result<u8, CliError>,
) -> Result<u8, CliError> {
    match config_path::resolve(given) {
        Ok(path) => command(&path),
        Err(missing) => {
            eprintln!("{missing}");
            Ok(check::INVALID_CONFIG)
        }
    }
}
