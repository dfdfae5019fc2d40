//! trawl-audit: scheduled audits over a lake's event data stores.
//!
//! A [`Pack`] lists audits (SQL, severity, ATT&CK ids, a [`Schedule`], a [`Window`], when it
//! fires). [`run`] runs the audits that are due (or all of them) over each store, each over its
//! own window, and records the runs and their findings in the lake's audit log
//! (`trawl_store::records`) in one Delta commit together with each audit's new watermark, so
//! that every event is audited exactly once whatever crashes: a `new-events` window is the
//! files that the store's commits after the watermark added, whatever their events' times.

#![warn(missing_docs)]

pub mod alert;
mod error;
pub mod pack;
mod run;
pub mod schedule;
pub mod sigma;

pub use alert::{Delivery, Sink, SinkKind};
pub use error::{Error, Result};
pub use pack::{Audit, Fires, Pack, Severity, Window};
pub use run::{
    AuditRun, Deliver, Finding, MAX_FINDINGS, Outcome, ResultFormat, ResultsOut, RunOptions, RunReport, run,
};
pub use schedule::Schedule;
