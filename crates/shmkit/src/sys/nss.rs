//! User and group names through the system's name service: `getpwuid_r`
//! and `getgrgid_r`, which consult `/etc/nsswitch.conf` (files, LDAP, SSSD,
//! systemd-homed, …) as `ls -l` does.

use std::ffi::CStr;

use rustix::io::Errno;

/// The largest buffer offered to the name service: a group with this many
/// bytes of members is given up on.
const MAX_BUFFER: usize = 1 << 20;

/// Which database to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Database {
    /// `passwd`, by uid.
    Users,
    /// `group`, by gid.
    Groups,
}

/// The name of user or group `id`: `Ok(None)` when the name service knows
/// no such id.
pub(crate) fn name_of(db: Database, id: u32) -> Result<Option<String>, Errno> {
    let mut buf = vec![0u8; 1024];
    loop {
        let found = match db {
            Database::Users => user_name(id, &mut buf),
            Database::Groups => group_name(id, &mut buf),
        };
        match found {
            Err(Errno::RANGE) if buf.len() < MAX_BUFFER => buf.resize(buf.len() * 4, 0),
            Err(Errno::INTR) => {}
            other => return other,
        }
    }
}

/// `getpwuid_r(uid, &pwd, buf, len, &result)`.
fn user_name(uid: u32, buf: &mut [u8]) -> Result<Option<String>, Errno> {
    let mut pwd = std::mem::MaybeUninit::<libc::passwd>::zeroed();
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: `pwd` is valid for writes of one `passwd`, `buf` for `buf.len()`
    // bytes and `result` for one pointer; all outlive the call, which writes
    // the strings it points `pwd` at into `buf`.
    let ret = unsafe { libc::getpwuid_r(uid, pwd.as_mut_ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if ret != 0 {
        return Err(Errno::from_raw_os_error(ret));
    }
    if result.is_null() {
        return Ok(None);
    }
    // SAFETY: on success with a non-null result, `pwd` is filled in and its
    // `pw_name` points at a NUL-terminated string inside `buf`, which is
    // still borrowed here.
    let name = unsafe { CStr::from_ptr(pwd.assume_init_ref().pw_name) };
    Ok(Some(name.to_string_lossy().into_owned()))
}

/// `getgrgid_r(gid, &grp, buf, len, &result)`.
fn group_name(gid: u32, buf: &mut [u8]) -> Result<Option<String>, Errno> {
    let mut grp = std::mem::MaybeUninit::<libc::group>::zeroed();
    let mut result: *mut libc::group = std::ptr::null_mut();
    // SAFETY: `grp` is valid for writes of one `group`, `buf` for `buf.len()`
    // bytes and `result` for one pointer; all outlive the call, which writes
    // the strings it points `grp` at into `buf`.
    let ret = unsafe { libc::getgrgid_r(gid, grp.as_mut_ptr(), buf.as_mut_ptr().cast(), buf.len(), &mut result) };
    if ret != 0 {
        return Err(Errno::from_raw_os_error(ret));
    }
    if result.is_null() {
        return Ok(None);
    }
    // SAFETY: on success with a non-null result, `grp` is filled in and its
    // `gr_name` points at a NUL-terminated string inside `buf`, which is
    // still borrowed here.
    let name = unsafe { CStr::from_ptr(grp.assume_init_ref().gr_name) };
    Ok(Some(name.to_string_lossy().into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name_and_a_group() {
        assert_eq!(name_of(Database::Users, 0).unwrap().as_deref(), Some("root"));
        assert!(name_of(Database::Groups, 0).unwrap().is_some());
    }

    #[test]
    fn unknown_ids_have_no_name() {
        assert_eq!(name_of(Database::Users, 3_999_999_999).unwrap(), None);
        assert_eq!(name_of(Database::Groups, 3_999_999_999).unwrap(), None);
    }
}
