//! Where a bridge's Zenoh configuration comes from (a file passed through, settings on the
//! command line or in the bridge's TOML file), and the TOML file of `bridge --config`.

use super::stats::{self, Direction};
use super::{Plan, ZenohArgs};
use crate::fail::Fail;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The pieces of a Zenoh configuration, applied in this order: the file, then the inline
/// settings (a JSON object), then the endpoints, then each `KEY=VALUE`.
#[derive(Debug, Clone, Default)]
pub struct ZenohSource {
    pub file: Option<PathBuf>,
    pub inline: Option<serde_json::Value>,
    pub listen: Vec<String>,
    pub connect: Vec<String>,
    pub settings: Vec<String>,
}

impl ZenohSource {
    pub(super) fn from_args(a: &ZenohArgs) -> ZenohSource {
        ZenohSource {
            file: a.zenoh_config.clone(),
            inline: None,
            listen: a.listen.clone(),
            connect: a.connect.clone(),
            settings: a.zenoh.clone(),
        }
    }

    /// The endpoints as Zenoh writes them: `ADDRESS:PORT` alone is TCP.
    fn endpoints(list: &[String]) -> String {
        let full: Vec<String> = list
            .iter()
            .map(|e| {
                if e.contains('/') {
                    e.clone()
                } else {
                    format!("tcp/{e}")
                }
            })
            .collect();
        serde_json::to_string(&full).expect("json")
    }

    /// Zenoh's configuration.
    #[cfg(feature = "bridge")]
    pub fn build(&self) -> Result<shmkit::bridge::zenoh::Config, Fail> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Fail::usage(format!("zenoh configuration: {what}: {e}"))
        };
        let mut c = match &self.file {
            Some(f) => shmkit::bridge::zenoh::Config::from_file(f)
                .map_err(|e| bad(&format!("{}", f.display()), &e))?,
            None => shmkit::bridge::zenoh::Config::default(),
        };
        if let Some(v) = &self.inline {
            let mut leaves = Vec::new();
            flatten(String::new(), v, &mut leaves).map_err(Fail::usage)?;
            for (k, v) in leaves {
                c.insert_json5(&k, &v.to_string())
                    .map_err(|e| bad(&format!("[zenoh] {k}"), &e))?;
            }
        }
        for (key, list) in [
            ("listen/endpoints", &self.listen),
            ("connect/endpoints", &self.connect),
        ] {
            if !list.is_empty() {
                c.insert_json5(key, &Self::endpoints(list))
                    .map_err(|e| bad(key, &e))?;
            }
        }
        for s in &self.settings {
            let Some((k, v)) = s.split_once('=') else {
                return Err(Fail::usage(format!(
                    "--zenoh {s:?}: KEY=VALUE, the value in JSON5 (e.g. \
                     scouting/multicast/enabled=false)"
                )));
            };
            c.insert_json5(k, v)
                .map_err(|e| bad(&format!("--zenoh {k}"), &e))?;
        }
        Ok(c)
    }
}

/// The settings of a table as Zenoh's paths (`listen/endpoints`) and their values: a
/// setting set in the TOML file changes that setting only, whatever else the configuration
/// file gave.
fn flatten(
    path: String,
    v: &serde_json::Value,
    out: &mut Vec<(String, serde_json::Value)>,
) -> Result<(), String> {
    match v {
        // An empty table sets nothing (as an empty `[zenoh.listen]` must not reset Zenoh's
        // whole `listen` section to its defaults).
        serde_json::Value::Object(map) if map.is_empty() => {}
        serde_json::Value::Object(map) if !map.is_empty() => {
            if map.contains_key("$__toml_private_datetime") {
                return Err(format!(
                    "[zenoh] {path}: a TOML date or time is no Zenoh setting"
                ));
            }
            for (k, v) in map {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}/{k}")
                };
                flatten(p, v, out)?;
            }
        }
        _ => out.push((path, v.clone())),
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct File {
    name: Option<String>,
    zenoh_config: Option<PathBuf>,
    zenoh: Option<toml::Table>,
    #[serde(default)]
    route: Vec<FileRoute>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileRoute {
    out: Option<String>,
    #[serde(rename = "in")]
    into: Option<String>,
    key: String,
    on_full: Option<String>,
}

/// Reads a `bridge --config` file.
pub fn load(path: &Path) -> Result<Plan, Fail> {
    // A bridge's file is a few lines; anything past 1 MiB is not one (`/dev/zero`).
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| {
            std::io::Read::read_to_end(&mut std::io::Read::take(f, (1 << 20) + 1), &mut bytes)
        })
        .map_err(|e| Fail::usage(format!("{}: {e}", path.display())))?;
    if bytes.len() > 1 << 20 {
        return Err(Fail::usage(format!(
            "{}: larger than 1 MiB: not a bridge's configuration",
            path.display()
        )));
    }
    let text = String::from_utf8(bytes)
        .map_err(|e| Fail::usage(format!("{}: not UTF-8 text ({e})", path.display())))?;
    let f: File =
        toml::from_str(&text).map_err(|e| Fail::usage(format!("{}: {e}", path.display())))?;
    let at = |what: String| Fail::usage(format!("{}: {what}", path.display()));
    let name = f.name.unwrap_or_else(|| "bridge".into());
    stats::check_name(&name).map_err(at)?;
    if f.route.is_empty() {
        return Err(at("no [[route]]: nothing to bridge".into()));
    }
    if f.route.len() > stats::ROUTES {
        return Err(at(format!("more than {} routes", stats::ROUTES)));
    }
    let mut routes = Vec::new();
    for (i, r) in f.route.iter().enumerate() {
        let (direction, channel) = match (&r.out, &r.into) {
            (Some(c), None) => (Direction::Out, c),
            (None, Some(c)) => (Direction::In, c),
            _ => {
                return Err(at(format!(
                    "route {}: give `out = CHANNEL` or `in = CHANNEL`, one of them",
                    i + 1
                )))
            }
        };
        let drop = match r.on_full.as_deref() {
            None | Some("block") => false,
            Some("drop") => true,
            Some(o) => return Err(at(format!("route {}: on-full {o:?}: block or drop", i + 1))),
        };
        routes.push(
            super::route(direction, channel, &r.key, drop)
                .map_err(|e| at(format!("route {}: {}", i + 1, e.message)))?,
        );
    }
    // A configuration file named in the file is found beside it.
    let file = f.zenoh_config.map(|z| match path.parent() {
        Some(dir) if z.is_relative() => dir.join(z),
        _ => z,
    });
    let inline = f
        .zenoh
        .map(|t| serde_json::to_value(t).map_err(|e| at(format!("[zenoh]: {e}"))))
        .transpose()?;
    Ok(Plan {
        name,
        zenoh: ZenohSource {
            file,
            inline,
            ..ZenohSource::default()
        },
        routes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (PathBuf, impl Drop) {
        struct Gone(PathBuf);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let p = std::env::temp_dir().join(format!(
            "shmkit-bridge-config-{}-{:?}.toml",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::write(&p, text).unwrap();
        (p.clone(), Gone(p))
    }

    #[test]
    fn a_file_of_routes_and_zenoh_settings_reads_back() {
        let (p, _gone) = write(
            r#"
name = "site-a"
zenoh-config = "z.json5"
[zenoh]
mode = "peer"
listen.endpoints = ["tcp/127.0.0.1:7447"]
[[route]]
out = "jobs"
key = "a/jobs"
[[route]]
in = "/results"
key = "b/**"
on-full = "drop"
"#,
        );
        let plan = load(&p).unwrap();
        assert_eq!(plan.name, "site-a");
        assert_eq!(plan.routes.len(), 2);
        assert_eq!(plan.routes[0].direction, Direction::Out);
        assert_eq!(plan.routes[0].channel, "/jobs");
        assert!(!plan.routes[0].drop);
        assert_eq!(plan.routes[1].direction, Direction::In);
        assert_eq!(plan.routes[1].channel, "/results");
        assert!(plan.routes[1].drop);
        assert_eq!(plan.zenoh.file, Some(p.parent().unwrap().join("z.json5")));
        let z = plan.zenoh.inline.unwrap();
        assert_eq!(z["mode"], "peer");
        assert_eq!(z["listen"]["endpoints"][0], "tcp/127.0.0.1:7447");
    }

    #[test]
    fn zenoh_settings_become_paths_and_odd_tables_are_said() {
        let leaves = |text: &str| {
            let t: toml::Table = toml::from_str(text).unwrap();
            let mut out = Vec::new();
            flatten(String::new(), &serde_json::to_value(t).unwrap(), &mut out).map(|()| out)
        };
        assert_eq!(leaves("").unwrap(), vec![]);
        assert_eq!(leaves("[listen]\n[scouting.multicast]\n").unwrap(), vec![]);
        let l = leaves("mode = \"peer\"\n[transport.link.tx]\nlease = 1000\n").unwrap();
        assert_eq!(
            l,
            vec![
                ("mode".to_string(), serde_json::json!("peer")),
                (
                    "transport/link/tx/lease".to_string(),
                    serde_json::json!(1000)
                ),
            ]
        );
        let e = leaves("when = 1979-05-27T07:32:00Z\n").unwrap_err();
        assert!(e.contains("TOML date"), "{e}");
        // An endless file is not read to its end.
        let e = load(Path::new("/dev/zero")).err().unwrap();
        assert!(e.message.contains("larger than 1 MiB"), "{}", e.message);
    }

    #[test]
    fn a_wrong_file_says_where() {
        for (text, says) in [
            ("", "no [[route]]"),
            ("[[route]]\nkey = \"k\"\n", "route 1: give `out = CHANNEL`"),
            (
                "[[route]]\nout = \"a\"\nin = \"b\"\nkey = \"k\"\n",
                "one of them",
            ),
            (
                "[[route]]\nin = \"a\"\nkey = \"k\"\non-full = \"wait\"\n",
                "block or drop",
            ),
            (
                "[[route]]\nout = \"a\"\nkey = \"k\"\non-full = \"drop\"\n",
                "on-full is for `in` routes",
            ),
            ("name = \"../x\"\n", "bridge name"),
            ("colour = 1\n", "unknown field"),
        ] {
            let (p, _gone) = write(text);
            let e = load(&p)
                .err()
                .unwrap_or_else(|| panic!("{text:?} was taken"));
            assert!(e.message.contains(says), "{text:?}: {}", e.message);
        }
    }
}
