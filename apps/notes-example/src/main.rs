//! Serves the notes example: Portcullis plus a small notes API.

use clap::Parser;
use portcullis::{Settings, SettingsArgs};

/// The notes example server. Takes the same settings as `portcullis`.
#[derive(Debug, Parser)]
#[command(name = "notes-example", about)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli.settings)?;
    portcullis::telemetry::init(&settings.log, settings.log_format);
    let app = notes_example::build(&settings)?;
    tracing_free_announce(&settings);
    poem::Server::new(poem::listener::TcpListener::bind(settings.bind))
        .run_with_graceful_shutdown(
            app,
            portcullis::shutdown_signal(),
            Some(portcullis::SHUTDOWN_GRACE),
        )
        .await?;
    Ok(())
}

/// The server logs its own address; this says where the docs are.
#[allow(
    clippy::print_stderr,
    reason = "a one-line hint for a person running the example"
)]
fn tracing_free_announce(settings: &Settings) {
    eprintln!("notes example: http://{}/docs", settings.bind);
}
