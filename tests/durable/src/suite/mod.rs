//! The conformance suite, written against a [`Store`](crate::Store): [`engine`] drives the
//! backend seam itself, [`queue`] a durable queued service and [`timer`] once-per-cluster
//! timers in hosts of this process, [`process`] real worker processes killed, stopped, stalled
//! and restarted, and [`commands`] the worker binary's `--check` on bad input. Which test covers
//! which line of the contract is said once, in [`conformance!`](crate::conformance).

pub mod commands;
pub mod engine;
pub mod process;
pub mod queue;
pub mod timer;
