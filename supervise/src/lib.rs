//! daemontools service supervision.
