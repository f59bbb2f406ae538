//! Subcommands of the `petal` binary. Each returns an error with context; `run` turns it
//! into a message on stderr and a non-zero exit code.

mod demo;
mod denoise;
mod eval_paper;
mod healthcheck;
mod model;
mod progress;
mod simulate;
mod token;
mod train_base;
mod worker;

use std::process::ExitCode;

use anyhow::Context;

use crate::app::Application;
use crate::config::{BenchCommand, Command, DatabaseArgs, EvalCommand, ModelCommand};
use crate::storage::Database;

pub fn run(command: Command) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("petal: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(command)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("petal: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => Application::build(args).await?.run_until_stopped().await?,
        Command::Worker(args) => worker::run(&args).await?,
        Command::Migrate(args) => {
            let db = open_database(&args.database).await?;
            let status = db.schema_status().await?;
            println!("{} database: {} of {} migrations applied", db.engine(), status.applied, status.expected);
            db.close().await;
        }
        Command::Token(args) => {
            let db = open_database(&args.database).await?;
            let result = token::run(&db, args.action).await;
            db.close().await;
            result?;
        }
        Command::Healthcheck(args) => return Ok(healthcheck::run(&args).await),
        Command::Bench(bench) => {
            run_bench(bench.command).await?;
            if let Some(path) = &bench.record {
                crate::bench::transcript::append_to(path)?;
                println!("recorded in {}", path.display());
            }
        }
        Command::Model(ModelCommand::Inspect { model, database }) => {
            model::inspect(&model::resolve(&model, &database).await?)
        }
        Command::Model(ModelCommand::Kse { model, phi, json, database }) => {
            model::kse(&model, phi, json, &database).await?
        }
        Command::Model(ModelCommand::ExportOnnx { model, out, folded, database }) => {
            model::export_onnx(&model::resolve(&model, &database).await?, &out, folded)?
        }
        Command::Model(ModelCommand::ImportOnnx { input, out }) => model::import_onnx(&input, &out)?,
        Command::Denoise(args) => denoise::run(&args).await?,
        Command::Demo(args) => demo::run(&args).await?,
        Command::TrainBase(args) => {
            tokio::task::spawn_blocking(move || train_base::run(&args)).await.context("the training stopped")??
        }
        Command::Eval(EvalCommand::Paper(args)) => {
            tokio::task::spawn_blocking(move || eval_paper::run(&args)).await.context("the evaluation stopped")??
        }
        Command::Simulate(args) => {
            tokio::task::spawn_blocking(move || simulate::run(&args)).await.context("the simulation stopped")??
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one `petal bench` command.
async fn run_bench(command: BenchCommand) -> anyhow::Result<()> {
    match command {
        BenchCommand::Stow(args) => crate::bench::stow::run(&args).await,
        BenchCommand::Inference(args) => crate::bench::inference::run(&args).await,
        BenchCommand::Denoise(args) => crate::bench::denoise::run(&args).await,
        BenchCommand::Round(args) => tokio::task::spawn_blocking(move || crate::bench::round::run(&args))
            .await
            .context("the round bench stopped")?,
        BenchCommand::TrainStep(args) => tokio::task::spawn_blocking(move || crate::bench::train_step::run(&args))
            .await
            .context("the training bench stopped")?,
    }
}

/// Connects and applies pending migrations, as every command that uses the database does.
async fn open_database(args: &DatabaseArgs) -> anyhow::Result<Database> {
    let db = Database::connect(&args.url(), args.db_max_connections).await.context("connecting to the database")?;
    db.migrate().await.context("applying database migrations")?;
    Ok(db)
}
