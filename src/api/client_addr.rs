//! Which client sent a request: the peer, or what trusted proxies say it was.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::Request;

/// The client's address: the peer's, unless the peer is one of `trusted` proxies; then
/// the right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries
/// further left were written by the client and prove nothing).
pub fn client_ip(req: &Request, trusted: &[IpNet]) -> Option<IpAddr> {
    let mut client = req.remote_addr().as_socket_addr()?.ip().to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&client) {
        return Some(client);
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in forwarded.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            // A malformed hop breaks the chain: stop at the last address we trust.
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    Some(client)
}

/// `scheme://host[:port]` of the service as the client addressed it: the `Host` header
/// (`X-Forwarded-Host` and `X-Forwarded-Proto` when the peer is a trusted proxy). Of a
/// forwarded header's entries the right-most counts, the one the trusted proxy added:
/// entries further left were written by the client or by proxies before it, as for
/// [`client_ip`]. A host that is not a plain `name[:port]` or `[v6]:port` gives way to the
/// address the request arrived on, so a client cannot write arbitrary text into the URLs
/// built from it.
pub fn request_origin(req: &Request, trusted: &[IpNet]) -> String {
    let from_proxy = req.remote_addr().as_socket_addr().is_some_and(|peer| {
        trusted
            .iter()
            .any(|net| net.contains(&peer.ip().to_canonical()))
    });
    // The last line's last entry: a proxy appends its entry to the list or adds a line.
    let forwarded = |name: &str| {
        req.headers()
            .get_all(name)
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
    };
    let scheme = match forwarded("x-forwarded-proto") {
        Some(proto) if from_proxy && proto.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    };
    let host = from_proxy
        .then(|| forwarded("x-forwarded-host"))
        .flatten()
        .or_else(|| req.headers().get("host").and_then(|v| v.to_str().ok()))
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(str::to_owned)
        .or_else(|| req.local_addr().as_socket_addr().map(ToString::to_string))
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{scheme}://{host}")
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use poem::{
        http::uri::Scheme,
        web::{LocalAddr, RemoteAddr},
        RequestParts,
    };

    use super::*;

    fn request(peer: &str, forwarded: &[&str]) -> Request {
        let mut http = poem::http::Request::builder();
        for value in forwarded {
            http = http.header("X-Forwarded-For", *value);
        }
        let (parts, ()) = http.body(()).unwrap().into_parts();
        let peer: SocketAddr = peer.parse().unwrap();
        let parts = RequestParts::from((
            parts,
            LocalAddr::default(),
            RemoteAddr(peer.into()),
            Scheme::HTTP,
        ));
        Request::from_parts(parts, poem::Body::empty())
    }

    #[test]
    fn peer_is_the_client_unless_it_is_a_trusted_proxy() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Untrusted peer: its own address, whatever it claims.
        let req = request("203.0.113.9:5000", &["198.51.100.1"]);
        assert_eq!(client_ip(&req, &proxies), Some(ip("203.0.113.9")));
        // Trusted peer: the right-most untrusted hop, not the client-written left part.
        let req = request("10.0.0.2:5000", &["1.1.1.1, 198.51.100.7", "10.0.0.3"]);
        assert_eq!(client_ip(&req, &proxies), Some(ip("198.51.100.7")));
        // Trusted peer without the header, or with garbage: the proxy itself.
        let req = request("10.0.0.2:5000", &[]);
        assert_eq!(client_ip(&req, &proxies), Some(ip("10.0.0.2")));
        let req = request("10.0.0.2:5000", &["not-an-ip"]);
        assert_eq!(client_ip(&req, &proxies), Some(ip("10.0.0.2")));
    }
}
