//! daemontools logging: multilog and the TAI64N tools.
