//! Durable work on the shared queue: the worker loop ([`worker`]) and every job it runs,
//! the denoise job and what enqueues it ([`denoise`]), and learning rounds ([`learning`]).
//! HTTP handlers and ingest callers enqueue; only workers run jobs.

pub mod denoise;
pub mod learning;
pub mod worker;
