//! djbdns dnscache, the dns client tools and the shared stub resolver.

pub mod packet;
pub mod stub;
