//! The platform table: the only place that knows suites, versions and paths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A host platform a lab can run on: one row of the platform table, which
/// alone knows suites, versions and paths.
///
/// ```
/// use pglab::Platform;
/// let p: Platform = "debian-11".parse().unwrap();
/// assert_eq!(p.pg_major(), 13);
/// assert_eq!(p.pg_data(), "/var/lib/postgresql/13/main");
/// assert!(!p.pgbackrest_restores_to_lsn(), "pgBackRest 2.33 has no --type=lsn");
/// assert_eq!(Platform::default(), Platform::Debian12);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub enum Platform {
    /// Debian 11 + PostgreSQL 13: the tutorial's "13 or older" branch.
    #[serde(rename = "debian-11")]
    Debian11,
    /// Debian 12 + PostgreSQL 15, the default.
    #[default]
    #[serde(rename = "debian-12")]
    Debian12,
    /// Debian 13 + PostgreSQL 17.
    #[serde(rename = "debian-13")]
    Debian13,
    /// The tutorial's own platform: Ubuntu 22.04 + PostgreSQL 14. Needs the
    /// `ubuntu:22.04` base image, so only where a registry was once reachable.
    #[serde(rename = "ubuntu-22.04")]
    Ubuntu2204,
}

/// How a platform's base filesystem is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// mmdebstrap of a Debian suite from the host's own apt mirror.
    Mmdebstrap {
        /// The Debian suite (`bookworm`).
        suite: &'static str,
    },
    /// A registry image that must already be on the engine.
    Registry {
        /// The image's reference (`ubuntu:22.04`).
        image: &'static str,
    },
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// The platform this row describes.
    pub platform: Platform,
    /// Its name (`debian-12`), as files and `--platform` write it.
    pub name: &'static str,
    /// The operating system, as a transcript names it.
    pub os: &'static str,
    /// Where its root filesystem comes from.
    pub base: Base,
    /// PostgreSQL's major version.
    pub pg_major: u32,
    /// The pgBackRest release the suite ships (the image's label says what was installed).
    pub pgbackrest: &'static str,
    /// Directory under `docker/` holding the recipe.
    pub recipe_dir: &'static str,
    /// Arguments to systemd as PID 1. systemd 256 and later boot on a cgroup
    /// v1 engine only when told to; in a container it reads this from its own
    /// command line.
    pub init_args: &'static [&'static str],
}

const TABLE: [Row; 4] = [
    Row {
        platform: Platform::Debian11,
        name: "debian-11",
        os: "Debian 11 (bullseye)",
        base: Base::Mmdebstrap { suite: "bullseye" },
        pg_major: 13,
        pgbackrest: "2.33",
        recipe_dir: "debian",
        init_args: &[],
    },
    Row {
        platform: Platform::Debian12,
        name: "debian-12",
        os: "Debian 12 (bookworm)",
        base: Base::Mmdebstrap { suite: "bookworm" },
        pg_major: 15,
        pgbackrest: "2.45",
        recipe_dir: "debian",
        init_args: &[],
    },
    Row {
        platform: Platform::Debian13,
        name: "debian-13",
        os: "Debian 13 (trixie)",
        base: Base::Mmdebstrap { suite: "trixie" },
        pg_major: 17,
        pgbackrest: "2.55.1",
        recipe_dir: "debian",
        init_args: &["SYSTEMD_CGROUP_ENABLE_LEGACY_FORCE=1"],
    },
    Row {
        platform: Platform::Ubuntu2204,
        name: "ubuntu-22.04",
        os: "Ubuntu 22.04 (jammy)",
        base: Base::Registry { image: "ubuntu:22.04" },
        pg_major: 14,
        pgbackrest: "2.38",
        recipe_dir: "ubuntu",
        init_args: &[],
    },
];

impl Platform {
    /// Every platform, in the table's order.
    pub const ALL: [Platform; 4] = [Platform::Debian11, Platform::Debian12, Platform::Debian13, Platform::Ubuntu2204];

    /// The platforms built here, offline: what the suite runs every scenario on.
    pub const OFFLINE: [Platform; 3] = [Platform::Debian11, Platform::Debian12, Platform::Debian13];

    /// This platform's row of the table.
    pub fn row(self) -> &'static Row {
        TABLE.iter().find(|r| r.platform == self).expect("every platform has a row")
    }

    /// Its name (`debian-12`).
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The operating system (`Debian 12 (bookworm)`).
    pub fn os(self) -> &'static str {
        self.row().os
    }

    /// PostgreSQL's major version.
    pub fn pg_major(self) -> u32 {
        self.row().pg_major
    }

    /// Where its root filesystem comes from.
    pub fn base(self) -> Base {
        self.row().base
    }

    /// Directory under `docker/` holding the recipe.
    pub fn recipe_dir(self) -> &'static str {
        self.row().recipe_dir
    }

    /// The pgBackRest release the platform's suite ships.
    pub fn pgbackrest(self) -> &'static str {
        self.row().pgbackrest
    }

    /// pgBackRest restores to an LSN (`--type=lsn`) from 2.35 on.
    pub fn pgbackrest_restores_to_lsn(self) -> bool {
        version_at_least(self.pgbackrest(), "2.35")
    }

    /// The command a host's container runs: systemd as PID 1.
    pub fn init_cmd(self) -> Vec<String> {
        std::iter::once("/sbin/init").chain(self.row().init_args.iter().copied()).map(String::from).collect()
    }

    /// postgresql-common's cluster config dir (`{pg.config_dir}`).
    pub fn pg_config_dir(self) -> String {
        format!("/etc/postgresql/{}/main", self.pg_major())
    }

    /// The cluster's data directory (`{pg.data}`).
    pub fn pg_data(self) -> String {
        format!("/var/lib/postgresql/{}/main", self.pg_major())
    }

    /// PostgreSQL's programs (`{pg.bin}`).
    pub fn pg_bin(self) -> String {
        format!("/usr/lib/postgresql/{}/bin", self.pg_major())
    }

    /// The cluster's log file (`{pg.log}`).
    pub fn pg_log(self) -> String {
        format!("/var/log/postgresql/postgresql-{}-main.log", self.pg_major())
    }

    /// The cluster's TCP port (postgresql-common's first cluster).
    pub fn pg_port(self) -> u16 {
        5432
    }

    /// The server's Unix socket, where postgresql-common puts it.
    pub fn pg_socket(self) -> String {
        format!("/var/run/postgresql/.s.PGSQL.{}", self.pg_port())
    }

    /// The per-cluster systemd unit (the umbrella `postgresql` is a oneshot).
    pub fn pg_unit(self) -> String {
        format!("postgresql@{}-main", self.pg_major())
    }
}

/// A dotted version's numbers: `"2.55.1"` is `[2, 55, 1]`.
pub fn dotted(s: &str) -> Option<Vec<u32>> {
    s.trim().split('.').map(|p| p.parse().ok()).collect()
}

/// Orders two dotted versions number by number, the shorter padded with
/// zeros: 2.55.1 is after 2.55, 2.100 after 2.35.
pub fn compare_versions(have: &[u32], want: &[u32]) -> std::cmp::Ordering {
    let n = have.len().max(want.len());
    let padded = |v: &[u32]| (0..n).map(|i| v.get(i).copied().unwrap_or(0)).collect::<Vec<_>>();
    padded(have).cmp(&padded(want))
}

/// `have` is `want` or later (both from the table: always dotted numbers).
pub fn version_at_least(have: &str, want: &str) -> bool {
    let parse = |v: &str| dotted(v).unwrap_or_else(|| panic!("`{v}` is not a dotted version"));
    compare_versions(&parse(have), &parse(want)) != std::cmp::Ordering::Less
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Platform {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown platform `{s}`; known: {}", Platform::ALL.map(|p| p.name()).join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_platform_has_one_row_and_its_name_parses_back() {
        for p in Platform::ALL {
            assert_eq!(TABLE.iter().filter(|r| r.platform == p).count(), 1, "{p:?}");
            assert_eq!(p.name().parse::<Platform>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.name()), "serde and the table agree");
        }
    }

    #[test]
    fn versions_compare_by_their_numbers() {
        assert!(version_at_least("2.55.1", "2.55") && version_at_least("2.55.1", "2.55.1"));
        assert!(!version_at_least("2.55", "2.55.1"));
        assert!(version_at_least("2.100", "2.35"), "numbers, not strings");
        assert!(!version_at_least("2.33", "2.35"));
        assert!(!Platform::Debian11.pgbackrest_restores_to_lsn());
        assert!(Platform::Debian12.pgbackrest_restores_to_lsn());
    }
}
