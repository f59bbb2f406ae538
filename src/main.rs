//! The `petal` binary: parse the command line, set up logging, hand over to [`petal::cli`].

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = petal::config::Cli::parse();
    petal::telemetry::init(&cli.log);
    petal::cli::run(cli.command)
}
