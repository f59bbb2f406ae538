//! The program around the layers: command-line parsing ([`config`]), assembling and running
//! the server and the worker ([`server`]), the offline commands ([`cli`]), the benchmarks
//! ([`bench`]) and logging ([`telemetry`]). Nothing below this layer imports it.

pub mod assembly;
pub mod bench;
pub mod cli;
pub mod config;
pub mod server;
pub mod telemetry;

pub use server::{Application, JobRunner, shutdown_signal, start_inference};
