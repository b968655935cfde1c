//! `partition` and `heal`: a host cut off from peers (blackhole routes set
//! by a short-lived helper with NET_ADMIN), and the cut mended.

use std::fmt;

use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

use super::{Act, Cx, Named};
use crate::error::Result;
use crate::lab::{Host, Hosts};
use crate::outcome::Fault;

/// Fault: cut the step's host off from these hosts, or from `"all"`,
/// both ways (blackhole routes set by a helper with NET_ADMIN that
/// shares the host's network namespace); addresses stay.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Partition(pub Peers);

/// Undo a `partition` or `latency` of the step's host with these hosts, or `"all"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(transparent)]
#[schemars(inline)]
pub(crate) struct Heal(pub Peers);

/// The hosts a `partition` or `heal` is about: named ones, or `"all"` the others.
#[derive(Debug, Clone)]
pub(crate) enum Peers {
    All,
    Hosts(Vec<Spanned<String>>),
}

impl<'de> Deserialize<'de> for Peers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Peers;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"all\" or a list of host names")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Peers, E> {
                match v {
                    "all" => Ok(Peers::All),
                    _ => Err(E::custom(format!("`{v}`: write \"all\" or a list of host names ([\"{v}\"])"))),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Peers, A::Error> {
                let mut hosts = Vec::new();
                while let Some(h) = seq.next_element::<Spanned<String>>()? {
                    hosts.push(h);
                }
                if hosts.is_empty() {
                    return Err(serde::de::Error::custom("an empty list cuts nothing: name hosts, or write \"all\""));
                }
                Ok(Peers::Hosts(hosts))
            }
        }
        d.deserialize_any(V)
    }
}

impl JsonSchema for Peers {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Peers".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "`\"all\"` (every other host of the lab), or a list of host names.",
            "anyOf": [{ "const": "all" }, { "type": "array", "items": { "type": "string" }, "minItems": 1 }]
        })
    }
}

impl Peers {
    fn named(&self, key: &'static str) -> Vec<Named<'_>> {
        match self {
            Peers::All => Vec::new(),
            Peers::Hosts(p) => p.iter().map(|h| Named::any(key, h)).collect(),
        }
    }

    /// The hosts it names, or every other host for `"all"`.
    pub(crate) fn of<'a, L: Hosts>(&self, lab: &'a L, host: &Host) -> Result<Vec<&'a Host>> {
        match self {
            Peers::All => Ok(lab.hosts().iter().filter(|h| h.name != host.name).collect()),
            Peers::Hosts(names) => names.iter().map(|n| lab.host(n.get_ref())).collect(),
        }
    }
}

pub(crate) fn names(hosts: &[&Host]) -> String {
    hosts.iter().map(|h| h.name.as_str()).collect::<Vec<_>>().join(", ")
}

impl Act for Partition {
    const FAULT: Fault = Fault::Starts { undo: Some("heal") };

    fn named(&self) -> Vec<Named<'_>> {
        self.0.named("partition")
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let peers = self.0.of(cx.lab, cx.host)?;
        cx.host.partition(&peers).await?;
        Ok(format!("{} cut off from {}", cx.host.name, names(&peers)))
    }
}

impl Act for Heal {
    const FAULT: Fault = Fault::Ends;

    fn named(&self) -> Vec<Named<'_>> {
        self.0.named("heal")
    }

    async fn run<L: Hosts>(&self, cx: &Cx<'_, L>) -> Result<String> {
        let peers = self.0.of(cx.lab, cx.host)?;
        cx.host.heal(&peers).await?;
        Ok(format!("{} reaches {} again", cx.host.name, names(&peers)))
    }
}
