//! djbdns dnscache, the dns client tools and the shared stub resolver.

pub mod access;
pub mod cache;
pub mod conf;
pub mod dnslog;
pub mod packet;
pub mod printpacket;
pub mod resolve;
pub mod response;
pub mod rewrite;
pub mod roots;
pub mod server;
pub mod stats;
pub mod stub;
pub mod tools;
pub mod transmit;
pub mod udpbatch;
