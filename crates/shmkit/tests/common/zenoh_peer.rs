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

/// As `config`, giving up a silent link after 1 s (Zenoh's default lease is 10 s) and
/// reconnecting every 200 ms to 1 s (default 1 to 4 s): a test can close a link in a second.
pub fn short_lease(listen: Option<&str>, connect: Option<&str>) -> zenoh::Config {
    let mut c = config(listen, connect);
    c.insert_json5("transport/link/tx/lease", "1000").unwrap();
    c.insert_json5(
        "connect/retry",
        "{ period_init_ms: 200, period_max_ms: 1000, period_increase_factor: 2 }",
    )
    .unwrap();
    c
}

/// `config`, or `short_lease` if `short`.
pub fn pick(short: bool, listen: Option<&str>, connect: Option<&str>) -> zenoh::Config {
    if short {
        short_lease(listen, connect)
    } else {
        config(listen, connect)
    }
}
