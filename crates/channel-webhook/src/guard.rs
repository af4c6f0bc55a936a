//! Where POSTs to addresses defined at runtime may go: never to loopback, link-local, private,
//! shared, unspecified or multicast addresses (what an admin token could otherwise turn against
//! the daemon's own network: cloud metadata at 169.254.169.254, services on 127.0.0.1) unless the
//! operator allows that network. Checked on the URL's literal address and after every DNS
//! resolution, so a name that later resolves inward (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
/// The URL type [`AddressGuard::check_url`] takes.
pub use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// A destination refused because of its address; the reason names it and how to allow it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} is {what} ({ip}); allow its network in channels.webhook.allowed_networks to post there")]
pub struct ForbiddenAddress {
    /// The host as named in the URL.
    pub host: String,
    /// The refused address.
    pub ip: IpAddr,
    /// What kind of address it is, e.g. `a loopback address`.
    pub what: &'static str,
}

/// The address policy for runtime-defined endpoints, and the DNS resolver that applies it.
#[derive(Debug, Clone, Default)]
pub struct AddressGuard {
    allowed: Arc<Vec<IpNet>>,
}

impl AddressGuard {
    /// A guard that also lets through the networks in `allowed` (CIDR, e.g. `10.1.0.0/16`);
    /// the error names the entry that is not a network.
    pub fn new(allowed: &[String]) -> Result<AddressGuard, String> {
        let nets = allowed
            .iter()
            .map(|n| n.parse::<IpNet>().or_else(|_| n.parse::<IpAddr>().map(IpNet::from)))
            .zip(allowed)
            .map(|(parsed, raw)| parsed.map_err(|_| format!("`{raw}` is not a network (e.g. 10.0.0.0/8)")))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AddressGuard { allowed: Arc::new(nets) })
    }

    /// Why `ip` may not be posted to, or `None` when it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = canonical(ip);
        if self.allowed.iter().any(|n| n.contains(&ip)) {
            return None;
        }
        inward(ip)
    }

    /// Checks a URL's host when it is a literal address (names are checked when resolved).
    pub fn check_url(&self, url: &reqwest::Url) -> Result<(), ForbiddenAddress> {
        let host = url.host_str().unwrap_or_default();
        let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() else { return Ok(()) };
        match self.refusal(ip) {
            Some(what) => Err(ForbiddenAddress { host: url.host_str().unwrap_or_default().to_string(), ip, what }),
            None => Ok(()),
        }
    }

    /// Resolves `host` and keeps the addresses that may be posted to; an error when none is left.
    pub async fn resolve_host(&self, host: &str) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
        let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
        let mut first_refusal = None;
        let permitted: Vec<SocketAddr> = all
            .into_iter()
            .filter(|a| match self.refusal(a.ip()) {
                Some(what) => {
                    first_refusal.get_or_insert(ForbiddenAddress { host: host.to_string(), ip: a.ip(), what });
                    false
                }
                None => true,
            })
            .collect();
        match (permitted.is_empty(), first_refusal) {
            (true, Some(refused)) => Err(Box::new(refused)),
            (true, None) => Err(format!("{host} resolves to no address").into()),
            (false, _) => Ok(permitted),
        }
    }

    /// An HTTP client for runtime-defined endpoints: this guard as its resolver, no redirects
    /// followed (a signed delivery is never re-sent elsewhere), no proxy (which would resolve the
    /// name where the guard cannot see it).
    pub fn client(&self, timeout: std::time::Duration) -> Result<reqwest::Client, String> {
        reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(self.clone()))
            .build()
            .map_err(|e| format!("cannot build HTTP client: {e}"))
    }
}

impl Resolve for AddressGuard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let permitted = guard.resolve_host(name.as_str()).await?;
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// The refusal behind a failed request, if the guard refused its address.
pub fn forbidden_in<'a>(error: &'a (dyn std::error::Error + 'static)) -> Option<&'a ForbiddenAddress> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(f) = e.downcast_ref::<ForbiddenAddress>() {
            return Some(f);
        }
        next = e.source();
    }
    None
}

/// IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::a.b.c.d`) addresses as the IPv4 address
/// they reach.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return IpAddr::V4(v4);
            }
            let s = v6.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                return IpAddr::V4(Ipv4Addr::new(a, b, c, d));
            }
            IpAddr::V6(v6)
        }
        v4 => v4,
    }
}

/// What kind of inward address `ip` is, or `None` for a public unicast address.
fn inward(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_link_local() {
                Some("a link-local address")
            } else if v4.is_private() {
                Some("a private address")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a shared (carrier-grade NAT) address")
            } else if v4.is_multicast() || v4.is_broadcast() || a >= 240 {
                Some("a multicast, broadcast or reserved address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let first = v6.segments()[0];
            if v6.is_unspecified() {
                Some("an unspecified address")
            } else if v6 == Ipv6Addr::LOCALHOST {
                Some("a loopback address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address")
            } else if first & 0xfe00 == 0xfc00 || first & 0xffc0 == 0xfec0 {
                Some("a private (unique local) address")
            } else if v6.is_multicast() {
                Some("a multicast address")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(guard: &AddressGuard, ip: &str) -> bool {
        guard.refusal(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn inward_addresses_are_refused_and_public_ones_pass() {
        let g = AddressGuard::default();
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(refused(&g, ip), "{ip} should be refused");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "172.32.0.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(!refused(&g, ip), "{ip} is public");
        }
    }

    #[test]
    fn an_allowed_network_lets_its_addresses_through_and_only_those() {
        let g = AddressGuard::new(&["10.20.0.0/16".into(), "127.0.0.1".into()]).unwrap();
        assert!(!refused(&g, "10.20.3.4") && !refused(&g, "127.0.0.1"));
        assert!(refused(&g, "10.21.0.1") && refused(&g, "127.0.0.2"));
        assert!(AddressGuard::new(&["not-a-net".into()]).unwrap_err().contains("not-a-net"));
    }

    #[test]
    fn literal_hosts_in_urls_are_checked() {
        let g = AddressGuard::default();
        let url = |u: &str| reqwest::Url::parse(u).unwrap();
        let e = g.check_url(&url("http://169.254.169.254/latest/meta-data")).unwrap_err();
        assert!(e.to_string().contains("link-local"), "{e}");
        assert!(g.check_url(&url("http://[::1]:8080/x")).is_err());
        assert!(g.check_url(&url("http://0.0.0.0/")).is_err());
        assert!(g.check_url(&url("https://helpdesk.example.com/hook")).is_ok(), "names are checked when resolved");
    }

    #[tokio::test]
    async fn names_that_resolve_inward_are_refused() {
        let e = AddressGuard::default().resolve_host("localhost").await.unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(
            AddressGuard::new(&["127.0.0.0/8".into(), "::1/128".into()])
                .unwrap()
                .resolve_host("localhost")
                .await
                .is_ok()
        );
    }
}
