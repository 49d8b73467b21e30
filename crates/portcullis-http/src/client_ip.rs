//! Who the client is: the socket peer, or what a trusted proxy says.
//!
//! `X-Forwarded-For` is believed only from configured proxies: walking the
//! header from the right, each hop is accepted while the address that
//! delivered it is trusted; the first untrusted address is the client. Anyone
//! else's header is ignored, so a client cannot pick its own rate-limit key.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::Request;

/// The proxies whose `X-Forwarded-For` is believed.
///
/// ```
/// use portcullis_http::client_ip::TrustedProxies;
///
/// let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.1"])?;
/// assert!(proxies.contains("10.1.2.3".parse()?));
/// assert!(!proxies.contains("203.0.113.9".parse()?));
/// assert!(TrustedProxies::parse(&["example.com"]).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses IPs and CIDRs (`10.0.0.1`, `10.0.0.0/8`, `::1`).
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let networks = entries
            .iter()
            .map(|entry| {
                let entry = entry.as_ref().trim();
                entry
                    .parse::<IpNet>()
                    .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("`{entry}` is not an IP address or CIDR"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { networks })
    }

    /// Whether `address` belongs to a trusted proxy.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The client address of `request`.
    pub fn client_ip(&self, request: &Request) -> Option<IpAddr> {
        let peer = request
            .remote_addr()
            .as_socket_addr()
            .map(|addr| canonical(addr.ip()))?;
        let forwarded = request
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(str::trim)
            .collect::<Vec<_>>();
        Some(self.resolve(peer, &forwarded))
    }

    /// Walks `forwarded` (left to right as sent) from the right while the
    /// current hop is trusted.
    fn resolve(&self, peer: IpAddr, forwarded: &[&str]) -> IpAddr {
        let mut client = peer;
        for hop in forwarded.iter().rev() {
            if !self.contains(client) {
                break;
            }
            match hop.parse::<IpAddr>() {
                Ok(address) => client = canonical(address),
                // A garbled entry from a trusted proxy: stop at the proxy.
                Err(_) => break,
            }
        }
        client
    }
}

/// IPv4-mapped IPv6 addresses are IPv4 addresses.
pub fn canonical(address: IpAddr) -> IpAddr {
    portcullis_domain::canonical_ip(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8"]).expect("valid");
        assert_eq!(
            proxies.resolve(ip("203.0.113.9"), &["1.2.3.4"]),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let proxies = TrustedProxies::parse(&["10.0.0.0/8", "192.0.2.1"]).expect("valid");
        // spoofed, real client, inner proxy; the peer is the outer proxy.
        let hops = ["6.6.6.6", "198.51.100.7", "192.0.2.1"];
        assert_eq!(proxies.resolve(ip("10.1.2.3"), &hops), ip("198.51.100.7"));
    }

    #[test]
    fn mapped_addresses_and_bad_entries_are_handled() {
        let proxies = TrustedProxies::parse(&["127.0.0.1"]).expect("valid");
        assert!(proxies.contains(ip("::ffff:127.0.0.1")));
        assert_eq!(
            proxies.resolve(ip("127.0.0.1"), &["garbage"]),
            ip("127.0.0.1")
        );
        assert!(TrustedProxies::parse(&["not-an-ip"]).is_err());
    }
}
