//! The fencing floor of one domain as this process has seen it: the highest token any store
//! replica reported (a write's `current_token`, a fenced write's refusal, a read's or scan's
//! `current_token`, a lease reply's `max_token`).
//!
//! The domain's quorum client and its elector share one [`TokenFloor`]. A leader whose token is
//! below the floor no longer leads (a replica it needs would refuse its writes); it steps down
//! and campaigns above the floor ([`crate::lease`]).

use std::sync::Arc;

use tokio::sync::watch;

use crate::store::wire::MAX_TOKEN;

/// The highest token seen, and the replica that reported it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Floor {
    /// The token (0 before any replica reported one).
    pub token: u64,
    /// The replica's node.
    pub replica: String,
}

/// A shared, only-growing record of the highest token replicas reported for one domain.
#[derive(Debug, Clone)]
pub struct TokenFloor {
    tx: Arc<watch::Sender<Floor>>,
}

impl Default for TokenFloor {
    fn default() -> Self {
        TokenFloor::new()
    }
}

impl TokenFloor {
    /// A floor at 0.
    pub fn new() -> TokenFloor {
        let (tx, _) = watch::channel(Floor::default());
        TokenFloor { tx: Arc::new(tx) }
    }

    /// Records that `replica` reported `token`; true if that raised the floor. A token above
    /// [`crate::store::wire::MAX_TOKEN`] is not one a replica can hold: it is logged and
    /// ignored.
    pub fn observe(&self, token: u64, replica: &str) -> bool {
        if token > MAX_TOKEN {
            tracing::warn!(
                token,
                replica,
                "a replica reported a token above the maximum"
            );
            return false;
        }
        self.tx.send_if_modified(|f| {
            if token > f.token {
                *f = Floor {
                    token,
                    replica: replica.to_owned(),
                };
                true
            } else {
                false
            }
        })
    }

    /// The highest token seen.
    pub fn token(&self) -> u64 {
        self.tx.borrow().token
    }

    /// The highest token seen and who reported it.
    pub fn get(&self) -> Floor {
        self.tx.borrow().clone()
    }

    /// Changes of the floor.
    pub fn subscribe(&self) -> watch::Receiver<Floor> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves the floor only grows, remembers who raised it, and ignores impossible tokens.
    #[test]
    fn floor_only_grows() {
        let f = TokenFloor::new();
        assert!(f.observe(3, "n1"));
        assert!(!f.observe(2, "n2"), "a lower token changes nothing");
        assert!(!f.observe(3, "n2"), "an equal token changes nothing");
        assert!(!f.observe(u64::MAX, "n3"), "above MAX_TOKEN is ignored");
        assert_eq!(
            f.get(),
            Floor {
                token: 3,
                replica: "n1".into()
            }
        );
        assert!(f.observe(MAX_TOKEN, "n3"));
        assert_eq!(f.token(), MAX_TOKEN);
    }
}
