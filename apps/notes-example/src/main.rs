//! Serves the notes example: Portcullis plus a small notes API.

use clap::Parser;
use portcullis::{Application, Settings, SettingsArgs};

/// The notes example server. Takes the same settings as `portcullis`.
#[derive(Debug, Parser)]
#[command(name = "notes-example", about)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::resolve(&cli.settings)?;
    portcullis::telemetry::init(&settings.log, settings.log_format);
    // The runtime the binary runs on, with its bound on blocking threads.
    portcullis::build_runtime()?.block_on(async {
        let application = notes_example::build(&settings).await?;
        announce_docs(&application);
        application.run().await
    })
}

/// The server logs its own address; this says where the docs are.
#[allow(
    clippy::print_stderr,
    reason = "a one-line hint for a person running the example"
)]
fn announce_docs(application: &Application) {
    eprintln!("notes example: {}/docs", application.base_url());
}
