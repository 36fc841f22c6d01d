//! Calls this server makes to URLs others gave it: which addresses are off limits (also
//! checked, by literal address, for agents' CIBA ping endpoints), and the client federation
//! peers' metadata, keys and introspection are fetched with, which keeps to them.
//!
//! Outside development mode a peer's URL must be `https`, must not name or resolve to this
//! host or a private network (SSRF: the server would otherwise fetch inside the deployment
//! for whoever configured the URL), is never followed through a redirect, and its answer
//! is bounded in time and size.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest answer read from a peer.
pub(crate) const MAX_BODY: usize = 256 * 1024;
/// Longest wait for a peer's answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Whether `ip` is this host, a private or special-purpose network.
pub(crate) fn internal_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            ip.is_loopback()
                || ip.is_private()
                || ip.is_link_local()
                || ip.is_broadcast()
                || ip.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (b & 0xc0) == 64)
                || (a == 198 && (b & 0xfe) == 18)
        }
        IpAddr::V6(ip) => {
            let s = ip.segments();
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || ip.to_ipv4().is_some()
                || s[0] == 0x2002
                || (s[0] == 0x64 && s[1] == 0xff9b)
        }
    }
}

/// Whether `url` names this host or a private network by a literal address or `localhost`.
pub(crate) fn internal_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        Some(url::Host::Ipv4(ip)) => internal_ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => internal_ip(IpAddr::V6(ip)),
        None => true,
    }
}

/// Resolves names, keeping only public addresses.
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| !internal_ip(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!("`{host}` resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// A client for URLs given by others: no redirects, bounded time, and (outside
/// development mode) public addresses only.
#[derive(Debug, Clone)]
pub(crate) struct Egress {
    client: reqwest::Client,
    dev: bool,
}

impl Egress {
    /// The client; `dev` allows plain http and internal addresses.
    pub(crate) fn new(dev: bool) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would resolve names itself, past the public-address check.
            .no_proxy();
        if !dev {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        let client = builder.build().map_err(|e| e.to_string())?;
        Ok(Self { client, dev })
    }

    /// Checks `raw` before anything is sent to it.
    pub(crate) fn check(&self, field: &str, raw: &str) -> Result<url::Url, String> {
        let url = url::Url::parse(raw).map_err(|e| format!("`{field}` is not a URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{field}` must not carry credentials or a fragment"
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if self.dev => {}
            _ => return Err(format!("`{field}` must be an https URL")),
        }
        if !self.dev && internal_host(&url) {
            return Err(format!(
                "`{field}` names this host or a private network (allowed only in development mode)"
            ));
        }
        Ok(url)
    }

    /// GETs `url` (checked) and reads its JSON answer.
    pub(crate) async fn get_json(
        &self,
        field: &str,
        url: &str,
    ) -> Result<serde_json::Value, String> {
        let url = self.check(field, url)?;
        let response = self
            .client
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("fetching {url} failed: {}", error_chain(&e)))?;
        read_json(response, &url).await
    }

    /// POSTs `form` to `url` (checked) and reads its JSON answer.
    pub(crate) async fn post_form(
        &self,
        field: &str,
        url: &str,
        form: &[(&str, &str)],
    ) -> Result<serde_json::Value, String> {
        let url = self.check(field, url)?;
        let response = self
            .client
            .post(url.clone())
            .form(form)
            .send()
            .await
            .map_err(|e| format!("calling {url} failed: {}", error_chain(&e)))?;
        read_json(response, &url).await
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

async fn read_json(
    mut response: reqwest::Response,
    url: &url::Url,
) -> Result<serde_json::Value, String> {
    let status = response.status();
    if status.is_redirection() {
        return Err(format!(
            "{url} answered with a redirect ({status}); redirects are not followed"
        ));
    }
    if !status.is_success() {
        return Err(format!("{url} answered {status}"));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(format!("{url} answered more than {MAX_BODY} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| format!("reading {url} failed: {}", error_chain(&e)))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("{url} answered more than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("{url} did not answer JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(internal_ip(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "2606:2800:220:1::1"] {
            assert!(!internal_ip(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_before_any_call() {
        let strict = Egress::new(false).unwrap();
        for bad in [
            "http://a.example/x",
            "https://127.0.0.1/x",
            "https://localhost/x",
            "https://u:p@a.example/",
            "https://[::1]/",
            "ftp://a.example/",
            "not a url",
        ] {
            assert!(strict.check("metadata_url", bad).is_err(), "{bad}");
        }
        assert!(
            strict
                .check("metadata_url", "https://a.example/.well-known/x")
                .is_ok()
        );
        let dev = Egress::new(true).unwrap();
        assert!(dev.check("metadata_url", "http://127.0.0.1:8080/x").is_ok());
    }
}
