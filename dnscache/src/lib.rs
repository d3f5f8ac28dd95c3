//! djbdns dnscache, the dns client tools and the shared stub resolver.

pub mod conf;
pub mod packet;
pub mod printpacket;
pub mod rewrite;
pub mod stub;
pub mod tools;
