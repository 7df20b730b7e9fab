//! Which store a command opens: the sled data directory (`--data DIR`, the default `data`) or
//! a PostgreSQL database (`--postgres URL`, its password from the systemd credential
//! `postgres-password` or `--postgres-password-file`, never from the command line).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use csrgate_store::{PostgresConfig, Store};

use crate::exit::{Failure, code};

/// The name of the systemd credential holding the PostgreSQL password.
pub const PASSWORD_CREDENTIAL: &str = "postgres-password";

/// `--data`, `--postgres` and the PostgreSQL files, shared by the store commands.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The sled data directory (ignored with --postgres).
    #[arg(long, value_name = "DIR", default_value = "data")]
    pub data: PathBuf,
    /// A PostgreSQL store instead: a libpq URL without a password, e.g.
    /// postgres://csrgate@db.internal/csrgate (a Unix socket:
    /// postgresql:///csrgate?host=/run/postgresql).
    #[arg(long, value_name = "URL")]
    pub postgres: Option<String>,
    #[command(flatten)]
    pub files: PostgresFileArgs,
}

/// `--postgres-password-file` and `--postgres-ca-file`, for every command that may connect to
/// PostgreSQL.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct PostgresFileArgs {
    /// The file holding the PostgreSQL password ($CREDENTIALS_DIRECTORY/postgres-password, from
    /// systemd's LoadCredential=, wins over it).
    #[arg(long, value_name = "FILE")]
    pub postgres_password_file: Option<PathBuf>,
    /// With sslmode=require in the URL: the CA certificates (PEM) the server's must chain to
    /// (default: the system's trust store).
    #[arg(long, value_name = "FILE")]
    pub postgres_ca_file: Option<PathBuf>,
}

impl PostgresFileArgs {
    /// The files these arguments name.
    pub fn files(&self) -> PostgresFiles<'_> {
        PostgresFiles {
            password_file: self.postgres_password_file.as_deref(),
            ca_file: self.postgres_ca_file.as_deref(),
        }
    }
}

/// A store named on the command line of `store copy`: `sled:DIR` or a PostgreSQL URL
/// (`postgres://...`, `postgresql://...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A sled data directory.
    Sled(PathBuf),
    /// A PostgreSQL URL without a password.
    Postgres(String),
}

impl std::str::FromStr for StoreLocation {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(dir) = text.strip_prefix("sled:") {
            if dir.is_empty() {
                return Err("sled: needs a directory, e.g. sled:/var/lib/csrgate".into());
            }
            return Ok(StoreLocation::Sled(PathBuf::from(dir)));
        }
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Ok(StoreLocation::Postgres(text.to_owned()));
        }
        Err(format!(
            "{text:?}: expected sled:DIR or a PostgreSQL URL (postgres://user@host/database)"
        ))
    }
}

impl std::fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreLocation::Sled(dir) => write!(f, "sled:{}", dir.display()),
            StoreLocation::Postgres(url) => f.write_str(url),
        }
    }
}

/// The files a PostgreSQL connection may need: the password's and the CA certificates'.
#[derive(Debug, Clone, Copy, Default)]
pub struct PostgresFiles<'a> {
    /// `--postgres-password-file` (the credential `postgres-password` wins over it).
    pub password_file: Option<&'a Path>,
    /// `--postgres-ca-file`.
    pub ca_file: Option<&'a Path>,
}

impl StoreArgs {
    /// The PostgreSQL files these arguments name.
    pub fn postgres_files(&self) -> PostgresFiles<'_> {
        self.files.files()
    }

    /// Where these arguments point.
    pub fn location(&self) -> StoreLocation {
        match &self.postgres {
            Some(url) => StoreLocation::Postgres(url.clone()),
            None => StoreLocation::Sled(self.data.clone()),
        }
    }
}

/// A runtime for the store's async API in a synchronous command.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(code::SOFTWARE, e))
}

/// Opens `location` in `runtime`. `create`: a sled directory is created when absent, a
/// PostgreSQL schema created or migrated; otherwise the store must exist as this build reads it.
pub fn open(
    runtime: &tokio::runtime::Runtime,
    location: &StoreLocation,
    postgres: &PostgresFiles<'_>,
    create: bool,
) -> Result<Store, Failure> {
    match location {
        StoreLocation::Sled(dir) => {
            if !create && !dir.exists() {
                return Err(Failure::new(
                    code::NO_INPUT,
                    anyhow::anyhow!("{} does not exist", dir.display()),
                ));
            }
            Store::open(dir).map_err(|e| Failure::new(code::CANT_CREATE, e))
        }
        StoreLocation::Postgres(url) => {
            let config = PostgresConfig {
                url: url.clone(),
                password: postgres_password(postgres.password_file)
                    .map_err(|e| Failure::new(code::NO_PERMISSION, e))?,
                pool_size: 4,
                ca_file: postgres.ca_file.map(Path::to_owned),
            };
            // Only a command that writes creates or migrates the schema: one that reads must not
            // migrate a database older replicas still serve from.
            let connected = if create {
                runtime.block_on(Store::connect_postgres(&config))
            } else {
                runtime.block_on(Store::connect_postgres_as_found(&config))
            };
            connected.map_err(connect_failure)
        }
    }
}

/// The PostgreSQL password: `$CREDENTIALS_DIRECTORY/postgres-password`, else `file`, else none
/// (peer or trust authentication on a Unix socket, or a password in ~/.pgpass is not read:
/// tokio-postgres does not read it).
pub fn postgres_password(file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let credential = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|dir| Path::new(&dir).join(PASSWORD_CREDENTIAL))
        .filter(|path| path.is_file());
    let Some(path) = credential.as_deref().or(file) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "cannot read the PostgreSQL password from {}",
            path.display()
        )
    })?;
    let password = text.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        anyhow::bail!(
            "{} is empty (the password is its first line)",
            path.display()
        );
    }
    Ok(Some(password))
}

/// A failed PostgreSQL connection as an exit: 78 for a URL to change, 73 for a database a newer
/// csrgate migrated, 69 for one that cannot be reached (a restart may heal it).
pub fn connect_failure(error: csrgate_store::StoreError) -> Failure {
    use csrgate_store::StoreError;
    let exit = match &error {
        StoreError::Open { .. } => code::CONFIG,
        StoreError::SchemaVersion { .. } => code::CANT_CREATE,
        _ => code::UNAVAILABLE,
    };
    Failure::new(exit, error)
}
