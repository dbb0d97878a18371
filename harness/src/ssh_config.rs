//! `harness nodes-from-ssh-config`: turns `vagrant ssh-config` output (OpenSSH client config,
//! one `Host` block per machine) into a nodes file for `--cluster ssh`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One `Host` block's fields that a nodes file needs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct HostBlock {
    name: String,
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    key: Option<String>,
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .to_owned()
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

/// Reads the `Host` blocks of an OpenSSH client config.
fn parse_blocks(text: &str) -> Result<Vec<HostBlock>, String> {
    /// Most `Host` blocks read (the nodes file holds at most this many nodes).
    const MAX_HOSTS: usize = crate::nodes_file::MAX_NODES;
    let mut blocks: Vec<HostBlock> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(|c: char| c.is_whitespace() || c == '=')
            .map(|(k, v)| (k.to_ascii_lowercase(), unquote(v.trim_start_matches('='))))
            .ok_or_else(|| format!("line {}: '{line}' has no value", i + 1))?;
        if key == "host" {
            if blocks.len() == MAX_HOSTS {
                return Err(format!("line {}: more than {MAX_HOSTS} hosts", i + 1));
            }
            blocks.push(HostBlock {
                name: value,
                ..HostBlock::default()
            });
            continue;
        }
        let Some(b) = blocks.last_mut() else {
            return Err(format!("line {}: '{key}' before any Host line", i + 1));
        };
        match key.as_str() {
            "hostname" => b.host = Some(value),
            "port" => b.port = Some(value),
            "user" => b.user = Some(value),
            "identityfile" if b.key.is_none() => b.key = Some(value),
            _ => {}
        }
    }
    if blocks.is_empty() {
        return Err("no Host blocks found (is this `vagrant ssh-config` output?)".into());
    }
    Ok(blocks)
}

/// One `[[node]]` table for `b`, with its service address if given.
fn render_node(b: &HostBlock, addr: Option<&String>) -> Result<String, String> {
    let need = |v: &Option<String>, what: &str| {
        v.clone()
            .ok_or_else(|| format!("Host '{}': no {what}", b.name))
    };
    let host = need(&b.host, "HostName")?;
    let port: u16 = b
        .port
        .clone()
        .unwrap_or_else(|| "22".into())
        .parse()
        .map_err(|_| format!("Host '{}': Port is not a port number", b.name))?;
    let user = need(&b.user, "User")?;
    let key = need(&b.key, "IdentityFile")?;
    let mut out = format!(
        "\n[[node]]\nname = {}\nhost = {}\nport = {port}\nuser = {}\nkey = {}\n",
        toml_str(&b.name),
        toml_str(&host),
        toml_str(&user),
        toml_str(&key)
    );
    if let Some(addr) = addr {
        let _ = writeln!(out, "addr = {}", toml_str(addr));
    }
    Ok(out)
}

/// Converts `text` to a nodes file naming `known_hosts`. `addrs` are `NAME=ADDR` overrides of
/// each node's service address (Vagrant's SSH goes through a forwarded port on 127.0.0.1, while
/// the services are reached on the private network). Errors are one line naming the culprit.
pub fn to_nodes_toml(text: &str, known_hosts: &str, addrs: &[String]) -> Result<String, String> {
    let mut overrides = BTreeMap::new();
    for a in addrs {
        let (name, addr) = a
            .split_once('=')
            .filter(|(n, v)| !n.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("--addr '{a}': expected NAME=ADDR"))?;
        overrides.insert(name.to_owned(), addr.to_owned());
    }
    let blocks = parse_blocks(text)?;
    for name in overrides.keys() {
        if !blocks.iter().any(|b| &b.name == name) {
            return Err(format!(
                "--addr {name}=...: no Host '{name}' in the ssh config"
            ));
        }
    }
    let mut out = format!(
        "# written by harness nodes-from-ssh-config\nknown_hosts = {}\n",
        toml_str(known_hosts)
    );
    for b in &blocks {
        out.push_str(&render_node(b, overrides.get(&b.name))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VAGRANT: &str = "Host n1\n  HostName 127.0.0.1\n  User vagrant\n  Port 2222\n  UserKnownHostsFile /dev/null\n  IdentityFile \"/home/u/p/.vagrant/machines/n1/virtualbox/private_key\"\n  IdentitiesOnly yes\n\nHost n2\n  HostName 127.0.0.1\n  User vagrant\n  Port 2200\n  IdentityFile /home/u/p/.vagrant/machines/n2/virtualbox/private_key\n";

    /// Proves `vagrant ssh-config` output becomes a nodes file with quoted paths unwrapped and
    /// address overrides applied, and that junk is one clear line.
    #[test]
    fn converts_vagrant_output() {
        let toml = to_nodes_toml(VAGRANT, "kh", &["n2=192.168.56.12".into()]).expect("converts");
        let v: toml::Value = toml::from_str(&toml).expect("valid toml");
        let nodes = v["node"].as_array().expect("nodes");
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0]["port"].as_integer(), Some(2222));
        assert_eq!(
            nodes[0]["key"].as_str(),
            Some("/home/u/p/.vagrant/machines/n1/virtualbox/private_key")
        );
        assert!(nodes[0].get("addr").is_none());
        assert_eq!(nodes[1]["addr"].as_str(), Some("192.168.56.12"));
        assert!(to_nodes_toml("", "kh", &[])
            .unwrap_err()
            .contains("no Host"));
        assert!(to_nodes_toml(VAGRANT, "kh", &["n9=1.2.3.4".into()])
            .unwrap_err()
            .contains("n9"));
        assert!(to_nodes_toml("Host a\n HostName h\n", "kh", &[])
            .unwrap_err()
            .contains("Host 'a': no User"));
    }
}
