//! ucspi-tcp 0.88 with IPv6: tcpserver, tcprules, tcprulescheck, tcpclient,
//! rblsmtpd and the small stream tools. Each program's logic is a module
//! here; src/bin holds only the entry points.

pub mod cdb;
pub mod detach;
pub mod env;
pub mod net;
pub mod rblsmtpd;
pub mod rules;
pub mod tcpclient;
pub mod tcprules;
pub mod tcpserver;
pub mod tools;
