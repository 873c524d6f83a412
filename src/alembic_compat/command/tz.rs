//! IANA time zones for the `timezone` option, found the way Python's `zoneinfo.ZoneInfo(key)`
//! finds them: a TZif file under the system's zoneinfo directories (`zoneinfo.TZPATH`). No
//! time-zone database is compiled in, so ralembic and Python Alembic on one machine read the
//! same rules.
//!
//! Supported: the UTC offset at an instant from the file's transitions (64-bit data when the
//! file has it). An instant after the last transition uses the last transition's offset when
//! the zone has no daylight-saving rule; a DST rule beyond the transitions (only in "slim"
//! TZif files, which Debian does not ship) is refused rather than guessed.

use super::Failure;

/// Python's `zoneinfo.TZPATH` default on Linux.
const TZPATH: &[&str] = &[
    "/usr/share/zoneinfo",
    "/usr/lib/zoneinfo",
    "/usr/share/lib/zoneinfo",
    "/etc/zoneinfo",
];

/// The offset east of UTC, in seconds, of zone `key` at `epoch`; `None` when no such zone
/// exists (Python's `ZoneInfoNotFoundError`).
pub fn utc_offset(key: &str, epoch: i64) -> Result<Option<i32>, Failure> {
    // zoneinfo refuses keys that are absolute or climb out of the search path.
    if key.is_empty()
        || key.starts_with('/')
        || key.split('/').any(|p| p == "..")
        || key.contains('\0')
    {
        return Err(Failure::python(
            "ValueError",
            &format!("ZoneInfo keys must be normalized relative paths, got: {key}"),
        ));
    }
    for dir in TZPATH {
        let path = std::path::Path::new(dir).join(key);
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path)
            .map_err(|e| Failure::python("OSError", &format!("{}: {e}", path.display())))?;
        return parse_offset(&data, epoch)
            .map(Some)
            .map_err(|m| Failure::python("ValueError", &format!("{m} ({})", path.display())));
    }
    Ok(None)
}

fn be32(d: &[u8], at: usize) -> Result<u32, String> {
    d.get(at..at + 4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| "Invalid TZif file: truncated".to_string())
}

struct Header {
    version: u8,
    isutcnt: usize,
    isstdcnt: usize,
    leapcnt: usize,
    timecnt: usize,
    typecnt: usize,
    charcnt: usize,
}

fn header(d: &[u8], at: usize) -> Result<Header, String> {
    if d.get(at..at + 4) != Some(b"TZif") {
        return Err("Invalid TZif file: magic not found".into());
    }
    let n = |i: usize| be32(d, at + 20 + 4 * i).map(|v| v as usize);
    Ok(Header {
        version: d.get(at + 4).copied().unwrap_or(0),
        isutcnt: n(0)?,
        isstdcnt: n(1)?,
        leapcnt: n(2)?,
        timecnt: n(3)?,
        typecnt: n(4)?,
        charcnt: n(5)?,
    })
}

/// The UTC offset at `epoch` from TZif data.
fn parse_offset(d: &[u8], epoch: i64) -> Result<i32, String> {
    let h1 = header(d, 0)?;
    let v1_len =
        h1.timecnt * 5 + h1.typecnt * 6 + h1.charcnt + h1.leapcnt * 8 + h1.isstdcnt + h1.isutcnt;
    let (h, start, tsize) = if h1.version >= b'2' {
        let at = 44 + v1_len;
        (header(d, at)?, at + 44, 8)
    } else {
        (h1, 44, 4)
    };
    if h.typecnt == 0 {
        return Err("Invalid TZif file: no local time types".into());
    }
    let times_at = start;
    let idx_at = times_at + h.timecnt * tsize;
    let types_at = idx_at + h.timecnt;
    let time = |i: usize| -> Result<i64, String> {
        let at = times_at + i * tsize;
        if tsize == 8 {
            d.get(at..at + 8)
                .map(|b| i64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
                .ok_or_else(|| "Invalid TZif file: truncated".to_string())
        } else {
            be32(d, at).map(|v| i64::from(v as i32))
        }
    };
    let ttype = |t: usize| -> Result<(i32, bool), String> {
        let at = types_at + t * 6;
        let off = be32(d, at)? as i32;
        let dst = d.get(at + 4).copied().unwrap_or(0) != 0;
        Ok((off, dst))
    };
    // The last transition at or before `epoch`.
    let mut found = None;
    for i in 0..h.timecnt {
        if time(i)? <= epoch {
            found = Some(i);
        } else {
            break;
        }
    }
    let type_of = |i: usize| -> Result<usize, String> {
        d.get(idx_at + i)
            .map(|b| usize::from(*b))
            .filter(|t| *t < h.typecnt)
            .ok_or_else(|| "Invalid TZif file: bad type index".to_string())
    };
    match found {
        None => {
            // Before the first transition: the first standard-time type, as zoneinfo does.
            for t in 0..h.typecnt {
                let (off, dst) = ttype(t)?;
                if !dst {
                    return Ok(off);
                }
            }
            ttype(0).map(|(o, _)| o)
        }
        Some(i) => {
            let (off, _) = ttype(type_of(i)?)?;
            if i + 1 == h.timecnt && h.version >= b'2' {
                // Past the last transition the footer's POSIX rule applies.
                let footer_at =
                    types_at + h.typecnt * 6 + h.charcnt + h.leapcnt * 12 + h.isstdcnt + h.isutcnt;
                let footer = d.get(footer_at..).unwrap_or_default();
                let footer = String::from_utf8_lossy(footer);
                if footer.trim().contains(',') {
                    return Err(
                        "daylight-saving rules beyond the file's last transition are not supported by ralembic"
                            .into(),
                    );
                }
            }
            Ok(off)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_zones() {
        if !std::path::Path::new("/usr/share/zoneinfo/Europe/Paris").is_file() {
            return; // no tzdata on this machine: Python finds no zone either
        }
        // 2024-01-15 and 2024-07-15 at noon UTC
        assert_eq!(
            utc_offset("Europe/Paris", 1_705_320_000).unwrap(),
            Some(3600)
        );
        assert_eq!(
            utc_offset("Europe/Paris", 1_721_044_800).unwrap(),
            Some(7200)
        );
        assert_eq!(utc_offset("UTC", 1_721_044_800).unwrap(), Some(0));
        assert_eq!(utc_offset("Nowhere/Atall", 0).unwrap(), None);
        assert!(utc_offset("../etc", 0).is_err());
    }
}
