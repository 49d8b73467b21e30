//! Who a request comes from.

use std::net::IpAddr;

/// The one spelling of an address: an IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.7`) is the IPv4 address it maps. A dual-stack socket
/// reports IPv4 clients that way, and a limiter or a log must not count one
/// client as two.
///
/// ```
/// use std::net::IpAddr;
///
/// use portcullis_domain::canonical_ip;
///
/// let mapped: IpAddr = "::ffff:192.0.2.7".parse()?;
/// assert_eq!(canonical_ip(mapped), "192.0.2.7".parse::<IpAddr>()?);
/// let v6: IpAddr = "2001:db8::1".parse()?;
/// assert_eq!(canonical_ip(v6), v6);
/// # Ok::<(), std::net::AddrParseError>(())
/// ```
pub fn canonical_ip(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}
