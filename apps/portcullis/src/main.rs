//! The `portcullis` command: the server (`serve`, the default) and account
//! administration on the same data directory.

use std::io::{BufRead, IsTerminal, Write as _};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use portcullis::{Application, ConfigError, DatabaseLocation, Settings, SettingsArgs};
use portcullis_domain::audit::SealedAuditEntry;
use portcullis_domain::{AuthError, Initiator, Password, RegistrationRequest, Role, User};

/// Portcullis: username/password authentication with OAuth2 tokens.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Manage accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage the access-token signing keys (EdDSA or ES256).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document (JSON) to stdout.
    Openapi,
    /// Create the data directory and database if missing and apply pending
    /// schema migrations, then exit. The server does this at every start
    /// (under a lock, so nodes starting together do not race); the `user`
    /// and `keys` commands need it done first.
    Migrate,
    /// Move the deployment to another store.
    #[command(subcommand)]
    Db(DbCommand),
    /// Check and read the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the audit log's MAC chain with the master key: exit 0 when it
    /// is whole, 1 naming the first bad `seq` (an event edited, deleted,
    /// moved or cut off).
    Verify,
    /// Print the stored events as JSON lines, oldest first, each with its
    /// chain MAC.
    Export {
        /// Only events at or after this time (RFC 3339, e.g.
        /// 2026-12-01T00:00:00Z).
        #[arg(long, value_parser = parse_rfc3339)]
        since: Option<time::OffsetDateTime>,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Copy the whole deployment of the configured store (accounts with
    /// their password hashes, sessions, API keys, signing keys) into an
    /// empty store, in one transaction. Stop the servers first: what they
    /// write meanwhile is not copied.
    Copy {
        /// The target: `postgres://...` or `sqlite:///path/file.db`. Its
        /// schema is created; it must hold no data.
        #[arg(long, env = "PORTCULLIS_DB_COPY_TO", hide_env_values = true)]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// List every key: kid, algorithm, state and times; never key material.
    List,
    /// Rotate now: the next key signs at once, a new next key is published,
    /// the current key retires. Running servers pick it up within their
    /// key upkeep interval.
    Rotate,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; the password is prompted for without echo, or read
    /// from stdin with --password-stdin.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Email address.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        full_name: Option<String>,
        /// Give the account the admin role.
        #[arg(long)]
        admin: bool,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Disable an account: it cannot log in and its sessions end at once.
    Disable {
        /// Login name.
        username: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Login name.
        username: String,
    },
    /// Change an account's role.
    SetRole {
        /// Login name.
        username: String,
        /// `admin` or `user`.
        #[arg(long, value_parser = ["admin", "user"])]
        role: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::resolve(&cli.settings) {
        Ok(settings) => settings,
        Err(error) => {
            print_error(error.message());
            return ExitCode::from(2);
        }
    };
    if matches!(cli.command, Some(Command::Openapi)) {
        // The document states the configured minimum password length, like
        // the server's /openapi.json.
        return print_line(&portcullis_http::openapi_json_for(
            settings.password_policy.min_length(),
        ));
    }
    portcullis::telemetry::init(&settings.log, settings.log_format);
    let runtime = match portcullis::build_runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            print_error(&format!("cannot start the async runtime: {error}"));
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            None | Some(Command::Serve) => serve(&settings).await,
            Some(Command::User(command)) => user(&settings, command).await,
            Some(Command::Keys(command)) => keys(&settings, command).await,
            Some(Command::Migrate) => portcullis::migrate(&settings)
                .await
                .map(|database| print_line(&format!("the database at {database} is up to date"))),
            Some(Command::Db(DbCommand::Copy { to })) => copy(&settings, &to).await,
            Some(Command::Audit(command)) => audit(&settings, command).await,
            Some(Command::Openapi) => Ok(ExitCode::SUCCESS),
        }
    });
    match result {
        Ok(code) => code,
        // A setting the machine cannot honour (found only once running,
        // like the open-file limit) is a configuration error like any other.
        Err(error) if error.downcast_ref::<ConfigError>().is_some() => {
            print_error(&format!("{error:#}"));
            ExitCode::from(2)
        }
        Err(error) => {
            print_error(&format!("{error:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: &Settings) -> anyhow::Result<ExitCode> {
    Application::build(settings).await?.run().await?;
    Ok(ExitCode::SUCCESS)
}

async fn user(settings: &Settings, command: UserCommand) -> anyhow::Result<ExitCode> {
    let auth = portcullis::build_admin_service(settings).await?;
    let result = match command {
        UserCommand::Create {
            username,
            email,
            full_name,
            admin,
            password_stdin,
        } => {
            let password = read_password(password_stdin)?;
            let role = if admin { Role::Admin } else { Role::User };
            auth.create_user(
                RegistrationRequest {
                    username,
                    email,
                    full_name,
                    password,
                },
                role,
                &Initiator::command_line(),
            )
            .await
        }
        UserCommand::Disable { username } => {
            auth.set_disabled(&username, true, &Initiator::command_line())
                .await
        }
        UserCommand::Enable { username } => {
            auth.set_disabled(&username, false, &Initiator::command_line())
                .await
        }
        UserCommand::SetRole { username, role } => {
            let role = Role::parse(&role).unwrap_or(Role::User);
            auth.set_role(&username, role, &Initiator::command_line())
                .await
        }
    };
    Ok(report(result))
}

async fn keys(settings: &Settings, command: KeysCommand) -> anyhow::Result<ExitCode> {
    let lifecycle = portcullis::build_key_lifecycle(settings).await?;
    if matches!(command, KeysCommand::Rotate) {
        lifecycle.rotate_now().await?;
    }
    print_line("kid\talg\tstate\tcreated_at\tsigns_from\tretires_at");
    let format = |time: time::OffsetDateTime| {
        time.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| time.unix_timestamp().to_string())
    };
    for key in lifecycle.keys().await? {
        print_line(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            key.kid,
            key.algorithm,
            key.state,
            format(key.created_at),
            format(key.signs_from),
            key.retires_at.map_or_else(|| "-".to_owned(), format),
        ));
    }
    Ok(ExitCode::SUCCESS)
}

async fn audit(settings: &Settings, command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Verify => match portcullis::verify_audit_log(settings).await? {
            Ok(report) => {
                match report.head {
                    None => print_line("the audit log is empty"),
                    Some(head) => print_line(&format!(
                        "the audit log is whole: {} events, seq {} to {}; head MAC {}",
                        report.events,
                        report.starts_after + 1,
                        head.seq,
                        head.mac.to_hex()
                    )),
                };
                Ok(ExitCode::SUCCESS)
            }
            Err(broken) => {
                print_error(&format!("{broken}"));
                Ok(ExitCode::FAILURE)
            }
        },
        AuditCommand::Export { since } => {
            let mut out = std::io::stdout().lock();
            portcullis::export_audit_log(settings, since, |sealed| {
                let line = export_line(sealed);
                writeln!(out, "{line}").context("cannot write the export")
            })
            .await?;
            out.flush().context("cannot write the export")?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One exported event: the stored fields, the details as JSON, the MAC in
/// hex.
fn export_line(sealed: &SealedAuditEntry) -> serde_json::Value {
    let entry = &sealed.entry;
    let at = entry
        .at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| entry.at.unix_timestamp().to_string());
    serde_json::json!({
        "seq": entry.seq,
        "at": at,
        "event": entry.event,
        "actor_id": entry.actor_id.map(|id| id.to_string()),
        "subject_id": entry.subject_id.map(|id| id.to_string()),
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "request_id": entry.request_id,
        "details": serde_json::from_str::<serde_json::Value>(&entry.details)
            .unwrap_or_else(|_| serde_json::Value::String(entry.details.clone())),
        "mac": sealed.mac.to_hex(),
    })
}

fn parse_rfc3339(text: &str) -> Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|_| format!("{text:?} is not an RFC 3339 time such as 2026-12-01T00:00:00Z"))
}

async fn copy(settings: &Settings, to: &str) -> anyhow::Result<ExitCode> {
    let target = DatabaseLocation::parse_url(to, settings.database_ca_file.clone())?;
    let copied = portcullis::copy_database(settings, &target).await?;
    print_line(&format!(
        "copied {} accounts, {} sessions ({} refresh tokens), {} API keys, {} signing keys \
         and {} audit events into {}",
        copied.users,
        copied.sessions,
        copied.refresh_tokens,
        copied.api_keys,
        copied.signing_keys,
        copied.audit_events,
        copied.target,
    ));
    if copied.signing_keys > 0 || copied.audit_events > 0 {
        print_line(
            "the signing keys and the audit log's chain depend on the master key: start the \
             servers on the new store with the same PORTCULLIS_MASTER_KEY_FILE",
        );
    }
    if settings.jwt_algorithm == portcullis_domain::SigningAlgorithm::Hs256 {
        print_line(
            "HS256 keys are not in the store: give the servers on the new store the same \
             PORTCULLIS_JWT_SECRET or jwt-signing-key file",
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn read_password(from_stdin: bool) -> anyhow::Result<Password> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let password = line.strip_suffix('\n').unwrap_or(&line);
        let password = password.strip_suffix('\r').unwrap_or(password);
        return Ok(Password::new(password.to_owned()));
    }
    if !std::io::stdin().is_terminal() {
        anyhow::bail!(
            "stdin is not a terminal: pass --password-stdin to read the password from it"
        );
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Repeat password: ")?;
    if first != second {
        anyhow::bail!("the passwords do not match");
    }
    Ok(Password::new(first))
}

/// Prints the outcome of an account command; exit code 1 on failure.
fn report(result: Result<User, AuthError>) -> ExitCode {
    match result {
        Ok(user) => print_line(&format!(
            "{} ({}) role={} disabled={}",
            user.username,
            user.id,
            user.role.as_str(),
            user.disabled
        )),
        Err(AuthError::Validation(errors)) => {
            for error in errors {
                print_error(&format!("{}: {}", error.field, error.message));
            }
            ExitCode::FAILURE
        }
        Err(AuthError::Conflict(field)) => {
            print_error(&format!("this {} is already taken", field.field_name()));
            ExitCode::FAILURE
        }
        Err(AuthError::NotFound) => {
            print_error("no such user");
            ExitCode::FAILURE
        }
        Err(error) => {
            print_error(&format!("{error}"));
            ExitCode::FAILURE
        }
    }
}

/// One error line on stderr, `portcullis: ` first, as the tests and
/// scripts read it.
#[allow(clippy::print_stderr, reason = "command errors go to stderr")]
fn print_error(message: &str) {
    eprintln!("portcullis: {message}");
}

#[allow(clippy::print_stdout, reason = "command output goes to stdout")]
fn print_line(text: &str) -> ExitCode {
    println!("{text}");
    ExitCode::SUCCESS
}
