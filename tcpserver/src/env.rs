//! The environment handed to a connection's program: the server's own
//! environment with the per-connection variables (PROTO, TCP*, rule
//! variables) set or removed. Built into buffers that are reused from one
//! connection to the next, so the accept loop does not allocate per client.

use std::ffi::{CString, OsString};
use std::os::raw::c_char;
use std::os::unix::ffi::OsStringExt;

/// The inherited environment plus this connection's changes.
pub struct ChildEnv {
    /// Inherited `NAME=value` entries.
    base: Vec<Vec<u8>>,
    /// This connection's variables: name, value (None = removed).
    vars: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    used: usize,
    block: Vec<u8>,
    ptrs: Vec<*const c_char>,
}

impl ChildEnv {
    pub fn from_process() -> ChildEnv {
        let base = std::env::vars_os()
            .map(|(k, v)| {
                let mut e = k.into_vec();
                e.push(b'=');
                e.extend_from_slice(&v.into_vec());
                e
            })
            .collect();
        ChildEnv::with_base(base)
    }

    pub fn with_base(base: Vec<Vec<u8>>) -> ChildEnv {
        ChildEnv {
            base,
            vars: Vec::new(),
            used: 0,
            block: Vec::new(),
            ptrs: Vec::new(),
        }
    }

    /// Forget the previous connection's variables (keeping their buffers).
    pub fn clear(&mut self) {
        self.used = 0;
    }

    /// Set (Some) or remove (None) a variable; the last setting wins.
    pub fn set(&mut self, name: &[u8], value: Option<&[u8]>) {
        let slot = match self.vars[..self.used].iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                if self.used == self.vars.len() {
                    self.vars.push((Vec::new(), None));
                }
                self.used += 1;
                let (n, _) = &mut self.vars[self.used - 1];
                n.clear();
                n.extend_from_slice(name);
                self.used - 1
            }
        };
        let v = &mut self.vars[slot].1;
        match value {
            None => *v = None,
            Some(val) => {
                let buf = v.get_or_insert_with(Vec::new);
                buf.clear();
                buf.extend_from_slice(val);
            }
        }
    }

    pub fn set_str(&mut self, name: &str, value: Option<&str>) {
        self.set(name.as_bytes(), value.map(str::as_bytes));
    }

    /// A variable's value as the program will see it.
    pub fn get(&self, name: &[u8]) -> Option<&[u8]> {
        if let Some((_, v)) = self.vars[..self.used].iter().find(|(n, _)| n == name) {
            return v.as_deref();
        }
        self.base.iter().find_map(|e| {
            let eq = e.iter().position(|&c| c == b'=')?;
            (&e[..eq] == name).then(|| &e[eq + 1..])
        })
    }

    /// The NULL-terminated `envp` array for execve/posix_spawn. Valid until
    /// the next call that changes this ChildEnv.
    pub fn envp(&mut self) -> *const *const c_char {
        let (mut block, mut ptrs) = (
            std::mem::take(&mut self.block),
            std::mem::take(&mut self.ptrs),
        );
        self.build(&mut block, &mut ptrs);
        (self.block, self.ptrs) = (block, ptrs);
        self.ptrs.as_ptr()
    }

    /// The environment as it is now, in buffers of its own that stay valid
    /// whatever happens to this ChildEnv afterwards.
    pub fn snapshot(&self) -> EnvBlock {
        let mut e = EnvBlock {
            block: Vec::new(),
            ptrs: Vec::new(),
        };
        self.build(&mut e.block, &mut e.ptrs);
        e
    }

    fn build(&self, block: &mut Vec<u8>, ptrs: &mut Vec<*const c_char>) {
        block.clear();
        let mut starts = Vec::with_capacity(self.used + self.base.len());
        for (n, v) in &self.vars[..self.used] {
            if let Some(v) = v {
                starts.push(block.len());
                block.extend_from_slice(n);
                block.push(b'=');
                block.extend_from_slice(v);
                block.push(0);
            }
        }
        for e in &self.base {
            let name = &e[..e.iter().position(|&c| c == b'=').unwrap_or(e.len())];
            if self.vars[..self.used].iter().any(|(n, _)| n == name) || e.contains(&0) {
                continue;
            }
            starts.push(block.len());
            block.extend_from_slice(e);
            block.push(0);
        }
        ptrs.clear();
        let base = block.as_ptr() as *const c_char;
        // SAFETY: every start is an offset inside block.
        ptrs.extend(starts.iter().map(|&s| unsafe { base.add(s) }));
        ptrs.push(std::ptr::null());
    }
}

/// An environment built once: `NAME=value\0` strings and the pointers to
/// them. Moving it keeps the pointers valid (they point into the heap).
pub struct EnvBlock {
    block: Vec<u8>,
    ptrs: Vec<*const c_char>,
}

impl EnvBlock {
    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    /// The `NAME=value\0` strings, one after the other.
    pub fn bytes(&self) -> &[u8] {
        &self.block
    }
}

pub struct Argv {
    _strings: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl Argv {
    /// None if an argument contains a NUL byte.
    pub fn new(args: &[OsString]) -> Option<Argv> {
        let strings: Vec<CString> = args
            .iter()
            .map(|a| CString::new(a.clone().into_vec()).ok())
            .collect::<Option<_>>()?;
        let mut ptrs: Vec<*const c_char> = strings.iter().map(|s| s.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Some(Argv {
            _strings: strings,
            ptrs,
        })
    }

    pub fn as_ptr(&self) -> *const *const c_char {
        self.ptrs.as_ptr()
    }

    /// The program (argv[0]).
    pub fn prog(&self) -> *const c_char {
        self.ptrs[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    fn strings(p: *const *const c_char) -> Vec<String> {
        let mut v = Vec::new();
        let mut i = 0;
        // SAFETY: p is a NULL-terminated array of C strings.
        unsafe {
            while !(*p.add(i)).is_null() {
                v.push(CStr::from_ptr(*p.add(i)).to_string_lossy().into_owned());
                i += 1;
            }
        }
        v
    }

    #[test]
    fn override_remove_and_reuse() {
        let mut e = ChildEnv::with_base(vec![
            b"PATH=/bin".to_vec(),
            b"TCPREMOTEHOST=old".to_vec(),
            b"A=1".to_vec(),
        ]);
        e.set_str("TCPREMOTEHOST", None);
        e.set_str("A", Some("2"));
        e.set_str("PROTO", Some("TCP"));
        assert_eq!(strings(e.envp()), ["A=2", "PROTO=TCP", "PATH=/bin"]);
        assert_eq!(e.get(b"A"), Some(&b"2"[..]));
        assert_eq!(e.get(b"TCPREMOTEHOST"), None);
        e.clear();
        e.set_str("PROTO", Some("TCP6"));
        assert_eq!(
            strings(e.envp()),
            ["PROTO=TCP6", "PATH=/bin", "TCPREMOTEHOST=old", "A=1"]
        );
    }
}
