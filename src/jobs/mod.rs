//! Durable work on the shared queue: the worker loop ([`worker`]) and every job it runs,
//! the denoise job and what enqueues it ([`denoise`]), learning rounds ([`learning`]), and
//! forwarding derived series to the hospital's PACS ([`forward`]).
//! HTTP handlers and ingest callers enqueue; only workers run jobs.

pub mod denoise;
pub mod forward;
pub mod learning;
pub mod worker;
