//! Partitions as iptables rules inside the nodes, all in the tool's own chain [`CHAIN`] so that a
//! heal removes exactly the rules the tool added and nothing of the node's own firewall.

use std::net::IpAddr;

/// The chain holding every rule this tool adds (jumped to from INPUT).
pub const CHAIN: &str = "SAGAJ";
/// Bound on duplicate jumps removed by a heal (one is added per partition at most).
const MAX_JUMPS_REMOVED: usize = 8;

/// The script that makes a node drop all traffic from `ips`. Each address is checked to be an
/// IP address, so nothing but addresses reaches the shell.
pub fn drop_from(ips: &[String]) -> Result<String, String> {
    let mut script = format!(
        "iptables -w -N {CHAIN} 2>/dev/null; \
         iptables -w -C INPUT -j {CHAIN} 2>/dev/null || iptables -w -I INPUT 1 -j {CHAIN} || exit 1"
    );
    for ip in ips {
        let ip: IpAddr = ip
            .parse()
            .map_err(|_| format!("'{ip}' is not an IP address"))?;
        let tool = if ip.is_ipv6() {
            "ip6tables"
        } else {
            "iptables"
        };
        if ip.is_ipv6() {
            script.push_str(&format!(
                "; ip6tables -w -N {CHAIN} 2>/dev/null; \
                 ip6tables -w -C INPUT -j {CHAIN} 2>/dev/null || ip6tables -w -I INPUT 1 -j {CHAIN} || exit 1"
            ));
        }
        script.push_str(&format!("; {tool} -w -A {CHAIN} -s {ip} -j DROP || exit 1"));
    }
    Ok(script)
}

/// The script that removes the chain and its jump; succeeds when there is nothing to remove.
pub fn heal() -> String {
    let mut s = String::new();
    for tool in ["iptables", "ip6tables"] {
        s.push_str(&format!(
            "for i in $(seq {MAX_JUMPS_REMOVED}); do {tool} -w -D INPUT -j {CHAIN} 2>/dev/null || break; done; \
             {tool} -w -F {CHAIN} 2>/dev/null; {tool} -w -X {CHAIN} 2>/dev/null; "
        ));
    }
    s.push_str("true");
    s
}

/// The script listing the chain's rules (empty output when the chain does not exist).
pub fn list() -> String {
    format!("iptables -w -S {CHAIN} 2>/dev/null; iptables -w -S INPUT 2>/dev/null | grep -- '-j {CHAIN}'; true")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Proves only IP addresses reach the shell and the drop script targets our chain.
    #[test]
    fn scripts_are_safe() {
        let s = drop_from(&["10.1.0.2".into()]).expect("valid");
        assert!(s.contains("-A SAGAJ -s 10.1.0.2 -j DROP"));
        assert!(drop_from(&["10.1.0.2; reboot".into()]).is_err());
        assert!(heal().contains("-X SAGAJ"));
    }
}
