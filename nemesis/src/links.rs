//! Links between nodes through a fault proxy: one proxy per (from node, to node, role), named
//! `link.<from>.<to>.<role>` (docs/contracts.md §7), so the nemesis can find the links of a
//! partition or a service from the proxy API alone — also in `harness heal`.

use serde::{Deserialize, Serialize};

/// One directed link: how `from` reaches `role` on `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Link {
    /// The calling node.
    pub from: String,
    /// The node serving the role.
    pub to: String,
    /// The role called.
    pub role: String,
}

const PREFIX: &str = "link.";

/// True when `s` can be one part of a link name (no `.`, non-empty, URL-safe).
pub fn valid_part(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

impl Link {
    /// A link; `None` if a part contains characters a proxy name cannot carry.
    pub fn new(from: &str, to: &str, role: &str) -> Option<Link> {
        [from, to, role]
            .iter()
            .all(|p| valid_part(p))
            .then(|| Link {
                from: from.to_owned(),
                to: to.to_owned(),
                role: role.to_owned(),
            })
    }

    /// The proxy name: `link.n1.n2.payment`.
    pub fn proxy_name(&self) -> String {
        proxy_name(&self.from, &self.to, &self.role)
    }

    /// Parses a proxy name; other proxies (not ours) give `None`.
    pub fn parse(name: &str) -> Option<Link> {
        let rest = name.strip_prefix(PREFIX)?;
        let mut parts = rest.split('.');
        let (from, to, role) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        Link::new(from, to, role)
    }

    /// `n1->n2/payment`.
    pub fn describe(&self) -> String {
        format!("{}->{}/{}", self.from, self.to, self.role)
    }
}

/// The proxy name of the link from `from` to `role` on `to`.
pub fn proxy_name(from: &str, to: &str, role: &str) -> String {
    format!("{PREFIX}{from}.{to}.{role}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves link names round-trip and foreign or malformed proxy names are not links.
    #[test]
    fn names_round_trip() {
        let l = Link::new("n1", "n2", "payment").expect("valid");
        assert_eq!(l.proxy_name(), "link.n1.n2.payment");
        assert_eq!(Link::parse(&l.proxy_name()), Some(l));
        for other in [
            "db",
            "link.n1.n2",
            "link.n1.n2.r.x",
            "link..n2.r",
            "x.n1.n2.r",
        ] {
            assert_eq!(Link::parse(other), None, "{other}");
        }
        assert!(Link::new("n.1", "n2", "r").is_none());
    }
}
