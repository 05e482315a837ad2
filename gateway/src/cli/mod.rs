//! The `gateway` command line: one module per subcommand. `main.rs` parses [`Cli`] and calls
//! [`execute`]; each subcommand writes its own output and returns the process exit code.

mod backends;
mod check;
mod explain;
mod hash_password;
mod password_input;
mod run;
mod schema;
pub(crate) mod services;
mod users;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use users::UsersAction;

/// A declarative, config-driven authentication gateway.
#[derive(Debug, Parser)]
#[command(name = "gateway", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve: load the config, build the chain, listen.
    Run(LoadArgs),
    /// Validate the config: print every error as `file:line:col: message` (exit 2), or the
    /// resolved chain and routes (exit 0).
    Check(LoadArgs),
    /// List the registered backend types and their options.
    Backends,
    /// Run the chain for one login and print each backend's outcome and time.
    Explain(ExplainArgs),
    /// Hash a password with Argon2id (read from the terminal, or from stdin when piped).
    HashPassword,
    /// Print the JSON Schema of the config file (for editors).
    Schema,
    /// Manage the local user store (`users_db`).
    Users(UsersArgs),
}

/// `gateway users`.
#[derive(Debug, Clone, Args)]
pub struct UsersArgs {
    /// The config file (its `users_db` names the store).
    #[command(flatten)]
    pub config: ConfigArg,
    /// What to do.
    #[command(subcommand)]
    pub action: UsersAction,
}

/// Where the config file is.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The config file.
    #[arg(
        long,
        short = 'c',
        env = "GATEWAY_CONFIG",
        default_value = "gateway.yaml"
    )]
    pub config: PathBuf,
}

/// The config file, and how strictly to load it (`run`, `check`).
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// Accept secrets written in a config file that other users can read (by default refused,
    /// as ssh refuses a private key others can read): `chmod 600` it, or use `env:` / `file:`.
    #[arg(long)]
    pub allow_insecure_config: bool,
}

/// `gateway explain`.
#[derive(Debug, Clone, Args)]
pub struct ExplainArgs {
    /// The config file.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The username to try; the password is asked for (or read from stdin when piped).
    #[arg(long, short = 'u')]
    pub user: String,
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
    /// Something else, with an operator-facing message.
    #[error("{0}")]
    Message(String),
}

/// Runs `cli`; returns the process exit code (0 success, 1 failure, 2 invalid config).
pub fn execute(cli: Cli) -> Result<u8, CliError> {
    // Each command locks stdout for itself; `run` does not, since the server's threads print.
    let stdout = || std::io::stdout().lock();
    match cli.command {
        Command::Run(args) => run::run(&args.config.config, args.allow_insecure_config),
        Command::Check(args) => check::check(
            &args.config.config,
            args.allow_insecure_config,
            &mut stdout(),
        ),
        Command::Backends => backends::backends(&mut stdout()),
        Command::Explain(args) => explain::explain(&args.config.config, &args.user, &mut stdout()),
        Command::HashPassword => hash_password::hash_password(&mut stdout()),
        Command::Schema => schema::schema(&mut stdout()),
        Command::Users(args) => users::users(&args.config.config, args.action, &mut stdout()),
    }
}
