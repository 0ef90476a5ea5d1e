//! Zenoh configurations for the bridge's tests: a peer that listens and connects only where
//! the test says (TCP endpoints, `ADDRESS:PORT`), with no scouting, so that it talks to no one
//! else on the machine's networks.

/// Listening on `listen` and connecting to `connect`, if given.
pub fn config(listen: Option<&str>, connect: Option<&str>) -> zenoh::Config {
    let mut c = zenoh::Config::default();
    let at = |a: Option<&str>| a.map_or("[]".to_string(), |a| format!(r#"["tcp/{a}"]"#));
    for (k, v) in [
        ("mode", r#""peer""#.to_string()),
        ("listen/endpoints", at(listen)),
        ("connect/endpoints", at(connect)),
        ("scouting/multicast/enabled", "false".to_string()),
        ("scouting/gossip/enabled", "false".to_string()),
    ] {
        c.insert_json5(k, &v).unwrap();
    }
    c
}
