//! daemontools service supervision.

pub mod control;
pub mod readiness;
pub mod status;
pub mod supervise;
pub mod svc;
pub mod svok;
pub mod svstat;
