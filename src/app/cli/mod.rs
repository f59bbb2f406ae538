//! Subcommands of the `petal` binary. Each returns an error with context; `run` turns it
//! into a message on stderr and a non-zero exit code.

mod database;
mod demo;
mod denoise;
mod eval_nema;
mod eval_paper;
mod eval_rounds;
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
use crate::app::config::{BenchCommand, Command, EvalCommand, ModelCommand};

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
            let db = database::open_database(&args.database).await?;
            let status = db.schema_status().await?;
            println!("{} database: {} of {} migrations applied", db.engine(), status.applied, status.expected);
            db.close().await;
        }
        Command::Token(args) => {
            let db = database::open_database(&args.database).await?;
            let result = token::run(&db, args.action).await;
            db.close().await;
            result?;
        }
        Command::Healthcheck(args) => return Ok(healthcheck::run(&args).await),
        Command::Bench(bench) => {
            run_bench(bench.command).await?;
            if let Some(path) = &bench.record {
                crate::app::bench::transcript::append_to(path)?;
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
        Command::Eval(EvalCommand::Rounds(args)) => {
            tokio::task::spawn_blocking(move || eval_rounds::run(&args)).await.context("the evaluation stopped")??
        }
        Command::Eval(EvalCommand::Nema(args)) => {
            tokio::task::spawn_blocking(move || eval_nema::run(&args)).await.context("the evaluation stopped")??
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
        BenchCommand::Stow(args) => crate::app::bench::stow::run(&args).await,
        BenchCommand::Inference(args) => crate::app::bench::inference::run(&args).await,
        BenchCommand::Denoise(args) => crate::app::bench::denoise::run(&args).await,
        BenchCommand::Round(args) => tokio::task::spawn_blocking(move || crate::app::bench::round::run(&args))
            .await
            .context("the round bench stopped")?,
        BenchCommand::BurnVolume(args) => {
            tokio::task::spawn_blocking(move || crate::app::bench::burn_volume::run(&args))
                .await
                .context("the burn volume bench stopped")?
        }
        BenchCommand::TrainStep(args) => tokio::task::spawn_blocking(move || crate::app::bench::train_step::run(&args))
            .await
            .context("the training bench stopped")?,
    }
}
