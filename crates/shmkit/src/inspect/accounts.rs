//! User and group names, through the system's name service.
//!
//! `getpwuid_r` and `getgrgid_r` (in [`crate::sys::nss`]) answer from
//! whatever `/etc/nsswitch.conf` names — local files, LDAP, SSSD,
//! systemd-homed — so a user known only to a directory service shows by
//! name, as in `ls -l`. Each id is asked once per listing: a directory
//! service may be slow.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::sys::nss::{self, Database};

/// The names of user and group ids, looked up once each.
#[derive(Debug, Default)]
pub(crate) struct Accounts {
    users: RefCell<HashMap<u32, Option<String>>>,
    groups: RefCell<HashMap<u32, Option<String>>>,
}

impl Accounts {
    /// An empty cache.
    pub(crate) fn load() -> Accounts {
        Accounts::default()
    }

    /// The name of user `uid`; `None` when the name service has none (or
    /// fails).
    pub(crate) fn user(&self, uid: u32) -> Option<String> {
        look_up(&self.users, Database::Users, uid)
    }

    /// The name of group `gid`.
    pub(crate) fn group(&self, gid: u32) -> Option<String> {
        look_up(&self.groups, Database::Groups, gid)
    }
}

fn look_up(cache: &RefCell<HashMap<u32, Option<String>>>, db: Database, id: u32) -> Option<String> {
    cache
        .borrow_mut()
        .entry(id)
        .or_insert_with(|| nss::name_of(db, id).ok().flatten())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_named_here() {
        let accounts = Accounts::load();
        assert_eq!(accounts.user(0).as_deref(), Some("root"));
        assert_eq!(accounts.user(0).as_deref(), Some("root")); // from the cache
        assert!(accounts.group(0).is_some());
        assert_eq!(accounts.user(3_999_999_999), None);
    }

    #[test]
    fn names_match_the_local_files_where_they_name_the_id() {
        // every user of /etc/passwd is known to the name service under the
        // name of its first line (as getpwuid gives it)
        let accounts = Accounts::load();
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
        let mut seen = std::collections::HashSet::new();
        for line in passwd.lines() {
            let f: Vec<&str> = line.split(':').collect();
            let (Some(name), Some(Ok(uid))) = (f.first(), f.get(2).map(|s| s.parse::<u32>())) else {
                continue;
            };
            if name.starts_with(['#', '+', '-']) || !seen.insert(uid) {
                continue;
            }
            assert_eq!(accounts.user(uid).as_deref(), Some(*name), "uid {uid}");
        }
        assert!(!seen.is_empty());
    }
}
