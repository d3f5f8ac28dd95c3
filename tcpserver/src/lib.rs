//! ucspi-tcp: tcpserver, tcprules and friends.
