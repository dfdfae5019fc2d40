//! Integration tests of the `trawl` binary, on real CloudTrail files (`tests/fixtures`).

mod audit;
mod compat;
mod crash;
mod examples;
mod harness;
mod hook;
mod ingest;
mod query;
mod repl;
mod s3;
mod slt;
mod store;
#[path = "../support/mod.rs"]
mod support;
mod verify;
