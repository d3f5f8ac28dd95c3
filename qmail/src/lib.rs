//! qmail.

pub mod bouncesaying;
pub mod condredirect;
pub mod control;
pub mod date822;
pub mod dotqmail;
pub mod except;
pub mod forward;
pub mod getpw;
pub mod home;
pub mod ids;
pub mod install;
pub mod local;
pub mod maildir2mbox;
pub mod maildir;
pub mod maildirmake;
pub mod maildirwatch;
pub mod mbox;
pub mod newu;
pub mod preline;
pub mod pw2u;
pub mod qmail_queue;
pub mod queue;
pub mod users;
