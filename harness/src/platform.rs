//! The platform table: the only place that knows suites, versions and paths.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A host platform a lab can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, schemars::JsonSchema)]
pub enum Platform {
    /// Debian 12 + PostgreSQL 15, built fully offline with mmdebstrap.
    #[default]
    #[serde(rename = "debian-12")]
    Debian12,
    /// The tutorial's own platform: Ubuntu 22.04 + PostgreSQL 14. Needs the
    /// `ubuntu:22.04` base image, so only where a registry was once reachable.
    #[serde(rename = "ubuntu-22.04")]
    Ubuntu2204,
}

/// How a platform's base filesystem is obtained.
#[derive(Debug, Clone, Copy)]
pub enum Base {
    /// mmdebstrap of a Debian suite from the host's own apt mirror.
    Mmdebstrap { suite: &'static str },
    /// A registry image that must already be on the engine.
    Registry { image: &'static str },
}

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::Debian12, Platform::Ubuntu2204];

    pub fn name(self) -> &'static str {
        match self {
            Platform::Debian12 => "debian-12",
            Platform::Ubuntu2204 => "ubuntu-22.04",
        }
    }

    pub fn pg_major(self) -> u32 {
        match self {
            Platform::Debian12 => 15,
            Platform::Ubuntu2204 => 14,
        }
    }

    pub fn base(self) -> Base {
        match self {
            Platform::Debian12 => Base::Mmdebstrap { suite: "bookworm" },
            Platform::Ubuntu2204 => Base::Registry { image: "ubuntu:22.04" },
        }
    }

    /// Directory under `docker/` holding the recipe.
    pub fn recipe_dir(self) -> &'static str {
        match self {
            Platform::Debian12 => "debian",
            Platform::Ubuntu2204 => "ubuntu",
        }
    }

    /// postgresql-common's cluster config dir (`{pg.config_dir}`).
    pub fn pg_config_dir(self) -> String {
        format!("/etc/postgresql/{}/main", self.pg_major())
    }

    /// The cluster's data directory (`{pg.data}`).
    pub fn pg_data(self) -> String {
        format!("/var/lib/postgresql/{}/main", self.pg_major())
    }

    pub fn pg_bin(self) -> String {
        format!("/usr/lib/postgresql/{}/bin", self.pg_major())
    }

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
