//! The table of `/proc/sysvipc/shm`.
//!
//! `procfs` parses this file too, but its parser (0.18) reads the `perms`
//! column, which the kernel prints in octal (`%4o`), as a decimal number, and
//! the `uid`, `gid`, `cuid` and `cgid` columns as 16-bit numbers: one segment
//! owned by a user id above 65535 (common for the users of rootless
//! containers) fails the whole table. This parser finds the columns by the
//! names in the header line, so that a column added by a later kernel does
//! not shift the others, and skips a line it cannot read instead of failing.

/// One segment, as the kernel lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Row {
    pub key: i32,
    pub shmid: i32,
    /// `shm_perm.mode`: the nine permission bits plus `SHM_DEST` (`0o1000`)
    /// and `SHM_LOCKED` (`0o2000`).
    pub perms: u32,
    pub size: u64,
    pub cpid: i32,
    pub lpid: i32,
    pub nattch: u64,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    /// Bytes resident in memory; `None` before Linux 4.x printed it.
    pub rss: Option<u64>,
    /// Bytes in swap; `None` before Linux 4.x printed it.
    pub swap: Option<u64>,
}

/// `SHM_DEST`: marked for removal (`IPC_RMID`), destroyed at the last detach.
pub(crate) const SHM_DEST: u32 = 0o1000;
/// `SHM_LOCKED`: locked in memory (`SHM_LOCK`).
pub(crate) const SHM_LOCKED: u32 = 0o2000;

/// Parses the whole file. Lines that cannot be read are skipped; a header
/// without the `key` and `shmid` columns gives no rows.
pub(crate) fn parse(text: &str) -> Vec<Row> {
    let mut lines = text.lines();
    let Some(header) = lines.next() else { return Vec::new() };
    let columns: Vec<&str> = header.split_whitespace().collect();
    let col = |name: &str| columns.iter().position(|c| *c == name);
    let (Some(key), Some(shmid)) = (col("key"), col("shmid")) else {
        return Vec::new();
    };
    let at = Columns {
        key,
        shmid,
        perms: col("perms"),
        size: col("size"),
        cpid: col("cpid"),
        lpid: col("lpid"),
        nattch: col("nattch"),
        uid: col("uid"),
        gid: col("gid"),
        cuid: col("cuid"),
        cgid: col("cgid"),
        atime: col("atime"),
        dtime: col("dtime"),
        ctime: col("ctime"),
        rss: col("rss"),
        swap: col("swap"),
    };
    lines.filter_map(|line| at.row(line)).collect()
}

/// Where each column is.
struct Columns {
    key: usize,
    shmid: usize,
    perms: Option<usize>,
    size: Option<usize>,
    cpid: Option<usize>,
    lpid: Option<usize>,
    nattch: Option<usize>,
    uid: Option<usize>,
    gid: Option<usize>,
    cuid: Option<usize>,
    cgid: Option<usize>,
    atime: Option<usize>,
    dtime: Option<usize>,
    ctime: Option<usize>,
    rss: Option<usize>,
    swap: Option<usize>,
}

impl Columns {
    fn row(&self, line: &str) -> Option<Row> {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // A column the header names must be there and readable; one it does
        // not name is left at zero.
        let num = |i: Option<usize>| -> Option<Option<i128>> {
            match i {
                None => Some(None),
                Some(i) => fields.get(i)?.parse::<i128>().ok().map(Some),
            }
        };
        let get = |i: Option<usize>| -> Option<i128> { num(i).map(Option::unwrap_or_default) };
        let perms = match self.perms {
            None => 0,
            Some(i) => u32::from_str_radix(fields.get(i)?, 8).ok()?,
        };
        Some(Row {
            key: i32::try_from(get(Some(self.key))?).ok()?,
            shmid: i32::try_from(get(Some(self.shmid))?).ok()?,
            perms,
            size: u64::try_from(get(self.size)?).ok()?,
            cpid: i32::try_from(get(self.cpid)?).ok()?,
            lpid: i32::try_from(get(self.lpid)?).ok()?,
            nattch: u64::try_from(get(self.nattch)?).ok()?,
            uid: u32::try_from(get(self.uid)?).ok()?,
            gid: u32::try_from(get(self.gid)?).ok()?,
            cuid: u32::try_from(get(self.cuid)?).ok()?,
            cgid: u32::try_from(get(self.cgid)?).ok()?,
            atime: i64::try_from(get(self.atime)?).ok()?,
            dtime: i64::try_from(get(self.dtime)?).ok()?,
            ctime: i64::try_from(get(self.ctime)?).ok()?,
            rss: num(self.rss)?.map(u64::try_from).transpose().ok()?,
            swap: num(self.swap)?.map(u64::try_from).transpose().ok()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n";

    #[test]
    fn parses_the_kernels_format() {
        let text = format!(
            "{HEADER}     74565     393274   640                 12298 30735 30735      1     0     0     0     0 1795462527          0 1795462527                  8192                     0\n\
             \x20        0     393275  1600                  4096   100   101      2 100000 100001  1000  1000 1795462527 1795462528 1795462529                     0                  4096\n\
             \x20       -1          7  2600                     1     1     1      0     0     0     0     0          0          0          0                     0                     0\n"
        );
        let rows = parse(&text);
        assert_eq!(rows.len(), 3);
        assert_eq!(
            rows[0],
            Row {
                key: 0x12345,
                shmid: 393274,
                perms: 0o640,
                size: 12298,
                cpid: 30735,
                lpid: 30735,
                nattch: 1,
                uid: 0,
                gid: 0,
                cuid: 0,
                cgid: 0,
                atime: 1795462527,
                dtime: 0,
                ctime: 1795462527,
                rss: Some(8192),
                swap: Some(0),
            }
        );
        // marked for removal: key 0, SHM_DEST in perms; a user id above 65535
        assert_eq!(rows[1].perms, SHM_DEST | 0o600);
        assert_eq!((rows[1].key, rows[1].uid, rows[1].gid), (0, 100000, 100001));
        assert_eq!(rows[1].swap, Some(4096));
        assert_eq!(rows[2].perms, SHM_LOCKED | 0o600);
        assert_eq!(rows[2].key, -1);
    }

    #[test]
    fn old_kernels_and_bad_lines() {
        // no rss and swap columns (before 4.x); a column order of its own
        let text = "key shmid size perms cpid lpid nattch uid gid cuid cgid atime dtime ctime\n\
                    5 6 4096 600 1 1 0 0 0 0 0 0 0 0\n\
                    5 notanumber 4096 600 1 1 0 0 0 0 0 0 0 0\n\
                    5 7 4096 999 1 1 0 0 0 0 0 0 0 0\n\
                    5 8\n";
        let rows = parse(text);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].shmid, rows[0].size, rows[0].perms), (6, 4096, 0o600));
        assert_eq!(rows[0].rss, None);
        assert!(parse("").is_empty());
        assert!(parse("nothing here\n1 2 3\n").is_empty());
    }
}
