//! User and group names from `/etc/passwd` and `/etc/group`.
//!
//! Only the local files are read (no NSS: LDAP or systemd-homed users have no
//! name here), which is cheap and needs no C call.

use std::collections::HashMap;

/// The names of user and group ids.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Accounts {
    /// Reads `/etc/passwd` and `/etc/group`; a file that cannot be read gives
    /// no names.
    pub(crate) fn load() -> Accounts {
        let read = |p| std::fs::read_to_string(p).unwrap_or_default();
        Accounts {
            users: parse(&read("/etc/passwd")),
            groups: parse(&read("/etc/group")),
        }
    }

    /// The name of user `uid`.
    pub(crate) fn user(&self, uid: u32) -> Option<String> {
        self.users.get(&uid).cloned()
    }

    /// The name of group `gid`.
    pub(crate) fn group(&self, gid: u32) -> Option<String> {
        self.groups.get(&gid).cloned()
    }
}

/// `name:password:id:…` lines, as both files have them. The first line with
/// an id wins, as for `getpwuid`.
fn parse(text: &str) -> HashMap<u32, String> {
    let mut names = HashMap::new();
    for line in text.lines() {
        let mut fields = line.split(':');
        let (Some(name), Some(_), Some(id)) = (fields.next(), fields.next(), fields.next()) else {
            continue;
        };
        if name.is_empty() || name.starts_with(['#', '+', '-']) {
            continue;
        }
        if let Ok(id) = id.trim().parse::<u32>() {
            names.entry(id).or_insert_with(|| name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_passwd_and_group_lines() {
        let users = parse(
            "root:x:0:0:root:/root:/bin/bash\n# comment\n+nis\nnobody:x:65534:65534::/:/usr/sbin/nologin\n\
             toor:x:0:0::/:/bin/sh\nbroken\nbad:x:notanumber:0::/:\n",
        );
        assert_eq!(users.get(&0).map(String::as_str), Some("root"));
        assert_eq!(users.get(&65534).map(String::as_str), Some("nobody"));
        assert_eq!(users.len(), 2);
        let groups = parse("root:x:0:\nwheel:x:10:alice,bob\n");
        assert_eq!(groups.get(&10).map(String::as_str), Some("wheel"));
    }

    #[test]
    fn root_is_named_here() {
        assert_eq!(Accounts::load().user(0).as_deref(), Some("root"));
    }
}
