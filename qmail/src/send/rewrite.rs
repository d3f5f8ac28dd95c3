//! qmail-send's address rewriting: envnoathost for bare names, percenthack,
//! locals (local channel), virtualdomains (local channel with the prepend),
//! everything else remote; plus the reverse of the virtual-domain prepend
//! for bounces and the VERP sender of `-@[]` addresses.

use std::collections::HashMap;

/// The controls rewriting depends on (reread on SIGHUP).
#[derive(Debug, Clone, Default)]
pub struct Rewriter {
    pub envnoathost: String,
    pub locals: Vec<String>,
    pub percenthack: Vec<String>,
    /// virtualdomains: lowercased key (`dom`, `.dom`, `user@dom`) -> prepend.
    pub vdoms: HashMap<String, String>,
}

/// Which channel a recipient goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chan {
    Local = 0,
    Remote = 1,
}

fn contains(list: &[String], s: &str) -> bool {
    list.iter().any(|l| l.eq_ignore_ascii_case(s))
}

/// Parse virtualdomains lines `key:prepend` (lines without a colon ignored).
pub fn vdoms(lines: &[String]) -> HashMap<String, String> {
    let mut m = HashMap::new();
    for l in lines {
        if let Some(c) = l.find(':') {
            m.entry(l[..c].to_ascii_lowercase())
                .or_insert_with(|| l[c + 1..].to_string());
        }
    }
    m
}

impl Rewriter {
    /// The rewritten recipient and its channel.
    pub fn rewrite(&self, recip: &str) -> (String, Chan) {
        let mut addr = recip.to_string();
        let mut i = match addr.rfind('@') {
            Some(i) => i,
            None => {
                addr.push('@');
                addr.push_str(&self.envnoathost);
                addr.len() - 1 - self.envnoathost.len()
            }
        };
        while contains(&self.percenthack, &addr[i + 1..]) {
            let Some(j) = addr[..i].rfind('%') else { break };
            addr.truncate(i);
            addr.replace_range(j..j + 1, "@");
            i = j;
        }
        let at = addr.rfind('@').unwrap_or(0);
        if contains(&self.locals, &addr[at + 1..]) {
            return (addr, Chan::Local);
        }
        if let Some(prepend) = self.vdom_lookup(&addr, at) {
            if !prepend.is_empty() {
                return (format!("{prepend}-{addr}"), Chan::Local);
            }
        }
        (addr, Chan::Remote)
    }

    /// The virtualdomains entry for `addr`: the whole address, then the
    /// domain, then each parent `.domain`, the empty key last.
    fn vdom_lookup(&self, addr: &str, at: usize) -> Option<&String> {
        let lower = addr.to_ascii_lowercase();
        let b = lower.as_bytes();
        for i in 0..=b.len() {
            if i == 0 || i == at + 1 || i == b.len() || (i > at && b[i] == b'.') {
                if let Some(p) = self.vdoms.get(&lower[i..]) {
                    return Some(p);
                }
            }
        }
        None
    }

    /// A bounce names the recipient as the sender wrote it: undo the prepend.
    pub fn strip_vdom_prepend<'a>(&self, recip: &'a str) -> &'a str {
        let Some(at) = recip.rfind('@') else {
            return recip;
        };
        let domain = recip[at + 1..].to_ascii_lowercase();
        let b = domain.as_bytes();
        for i in 0..=b.len() {
            if i == 0 || i == b.len() || b[i] == b'.' {
                if let Some(p) = self.vdoms.get(&domain[i..]) {
                    if p.is_empty() {
                        break;
                    }
                    if recip.len() > p.len()
                        && recip.starts_with(p.as_str())
                        && recip.as_bytes()[p.len()] == b'-'
                    {
                        return &recip[p.len() + 1..];
                    }
                    break;
                }
            }
        }
        recip
    }
}

/// The sender given to a delivery: `owner-@host-@[]` becomes
/// `owner-recipbox=reciphost@host` (VERP), anything else is unchanged.
pub fn sender_for(sender: &str, recip: &str) -> String {
    if let Some(base) = sender.strip_suffix("-@[]") {
        if let (Some(j), Some(k)) = (base.rfind('@'), recip.rfind('@')) {
            return format!(
                "{}{}={}@{}",
                &sender[..j],
                &recip[..k],
                &recip[k + 1..],
                &base[j + 1..]
            );
        }
    }
    sender.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw() -> Rewriter {
        Rewriter {
            envnoathost: "home.org".into(),
            locals: vec!["home.org".into(), "localhost".into()],
            percenthack: vec!["relay.org".into()],
            vdoms: vdoms(&[
                "nowhere.mil:bob".into(),
                ".virt.org:alias-v".into(),
                "joe@other.org:joe".into(),
                "except.nowhere.mil:".into(),
            ]),
        }
    }

    #[test]
    fn channels_and_prepends() {
        let r = rw();
        assert_eq!(r.rewrite("x"), ("x@home.org".into(), Chan::Local));
        assert_eq!(
            r.rewrite("x@LocalHost"),
            ("x@LocalHost".into(), Chan::Local)
        );
        assert_eq!(r.rewrite("x@far.net"), ("x@far.net".into(), Chan::Remote));
        assert_eq!(
            r.rewrite("u@nowhere.mil"),
            ("bob-u@nowhere.mil".into(), Chan::Local)
        );
        assert_eq!(
            r.rewrite("u@a.virt.org"),
            ("alias-v-u@a.virt.org".into(), Chan::Local)
        );
        assert_eq!(
            r.rewrite("joe@other.org"),
            ("joe-joe@other.org".into(), Chan::Local)
        );
        assert_eq!(
            r.rewrite("u@except.nowhere.mil"),
            ("u@except.nowhere.mil".into(), Chan::Remote)
        );
        assert_eq!(
            r.rewrite("a%far.net@relay.org"),
            ("a@far.net".into(), Chan::Remote)
        );
        assert_eq!(r.strip_vdom_prepend("bob-u@nowhere.mil"), "u@nowhere.mil");
    }

    #[test]
    fn verp_sender() {
        assert_eq!(
            sender_for("owner-@list.org-@[]", "joe@x.net"),
            "owner-joe=x.net@list.org"
        );
        assert_eq!(sender_for("a@b", "c@d"), "a@b");
    }
}
