//! daemontools logging: multilog (script, matcher, log directories, main
//! loop) and the TAI64N tools tai64n and tai64nlocal.

pub mod logdir;
pub mod matcher;
pub mod multilog;
pub mod processor;
pub mod script;
pub mod sys;
pub mod tai64n;
pub mod tai64nlocal;
