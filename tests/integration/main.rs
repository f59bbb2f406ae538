//! Integration tests: the real server on port 0, real HTTP, real databases (a fresh SQLite
//! file and a fresh PostgreSQL database per test), and the real `petal` binary where
//! processes matter. One test binary, so the suite links once.

mod common;
mod database_outage;
mod denoise_cli;
mod denoise_series;
mod derived_series;
mod dicomweb_client;
mod dimse;
mod erasure;
mod fixtures;
mod forwarding;
mod interop;
mod jobs;
mod kse_reference;
mod learning;
mod model_agreement;
mod model_cli;
mod model_versions;
mod normalisation;

mod acceptance;
mod access;
mod audit;
mod bench_inference;
mod bench_stow;
mod errors;
mod eval_nema;
mod eval_paper;
mod eval_rounds;
mod health;
mod inference;
mod openapi_drift;
mod patient_models;
mod pipeline;
mod processes;
mod session;
mod simulate;
mod sqlite_writes;
mod stow;
mod tokens;
mod train_base;
mod volume;
mod wado_qido;
mod web_page;
mod worker_processes;
