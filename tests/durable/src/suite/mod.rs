//! The conformance suite, written against a [`Store`](crate::Store): [`engine`] drives the
//! backend seam itself, [`queue`] a durable queued service in a host of this process, and
//! [`process`] real worker processes killed, stopped, stalled and restarted. Which test covers
//! which line of the contract is said once, in [`conformance!`](crate::conformance).

pub mod engine;
pub mod process;
pub mod queue;
