//! The `petal` binary: parse the command line, set up logging, hand over to [`petal::app::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = petal::app::config::Cli::parse();
    petal::app::telemetry::init(&cli.log);
    petal::app::cli::run(cli.command)
}
