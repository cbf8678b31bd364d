//! Host names (a relay's) resolved by the system's own resolver, and by nothing else.
//!
//! iroh's default resolver reads the system's configuration but, for what that cannot answer,
//! asks public DNS servers (over UDP and HTTPS). Someone who runs their own relay on their own
//! network means no third party, so unless they chose n0's relays duet asks only the C library
//! (`getaddrinfo`: the hosts file, the configured nameservers, whatever the system's name service
//! switch says). No TXT lookups: duet uses no DNS address lookup then.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use iroh::dns::{BoxIter, DnsError, Resolver, TxtRecordData};
use n0_error::{AnyError, e};
use n0_future::boxed::BoxFuture;

/// A [`Resolver`] that asks the operating system only.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

/// The addresses the system gives for `host`, of the family `pick` keeps (port 0: only the
/// addresses matter; `lookup_host` runs getaddrinfo on a blocking thread).
fn lookup<T: Send + 'static>(
    host: String,
    pick: fn(IpAddr) -> Option<T>,
) -> BoxFuture<Result<BoxIter<T>, DnsError>> {
    Box::pin(async move {
        let found = tokio::net::lookup_host((host.trim_end_matches('.'), 0))
            .await
            .map_err(|err| e!(DnsError::Resolve, AnyError::from_std(err)))?;
        let picked: Vec<T> = found.filter_map(|a| pick(a.ip())).collect();
        if picked.is_empty() {
            return Err(e!(DnsError::NoResponse));
        }
        Ok(Box::new(picked.into_iter()) as BoxIter<T>)
    })
}

impl Resolver for SystemResolver {
    fn lookup_ipv4(&self, host: String) -> BoxFuture<Result<BoxIter<Ipv4Addr>, DnsError>> {
        lookup(host, |ip| match ip {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        })
    }

    fn lookup_ipv6(&self, host: String) -> BoxFuture<Result<BoxIter<Ipv6Addr>, DnsError>> {
        lookup(host, |ip| match ip {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => Some(v6),
            _ => None,
        })
    }

    fn lookup_txt(&self, _host: String) -> BoxFuture<Result<BoxIter<TxtRecordData>, DnsError>> {
        Box::pin(async { Err(e!(DnsError::NoResponse)) })
    }

    fn clear_cache(&self) {}

    fn reset(&self) -> Box<dyn Resolver> {
        Box::new(SystemResolver)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_the_system_knows_resolve_and_others_fail_without_asking_anyone_else() {
        let r = SystemResolver;
        let v4: Vec<_> = r.lookup_ipv4("localhost".into()).await.unwrap().collect();
        assert!(v4.contains(&Ipv4Addr::LOCALHOST), "{v4:?}");
        let literal: Vec<_> = r.lookup_ipv4("127.0.0.9".into()).await.unwrap().collect();
        assert_eq!(literal, vec![Ipv4Addr::new(127, 0, 0, 9)]);
        assert!(r.lookup_txt("localhost".into()).await.is_err());
        assert!(r.lookup_ipv4("no-such-host.invalid".into()).await.is_err());
    }
}
