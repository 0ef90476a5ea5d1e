//! The inventory tells a channel from the POSIX segment it lives in, by the segment's first
//! bytes only.
// Linux only, as channels and the inventory are.
#![cfg(target_os = "linux")]

mod common;
use common::unique;
use shmkit::channel::{broadcast, mpsc, spsc, SpscConfig};
use shmkit::inventory::{self, Address, ChannelInfo, Kind, ListOptions, Orphan};
use shmkit::PosixShm;

fn address(seg: &PosixShm) -> Address {
    Address::PosixShm(seg.name().into())
}

fn listed(kind: Kind, addr: &Address) -> bool {
    inventory::list(&ListOptions {
        kinds: vec![kind],
        holders: false,
    })
    .unwrap()
    .objects
    .iter()
    .any(|o| o.address == *addr)
}

#[test]
fn a_segment_becomes_a_channel_once_one_is_built_in_it() {
    let config = SpscConfig::new(1024);
    // Dropped at the end of the test: the creator unlinks its segment.
    let seg =
        PosixShm::create(&format!("/{}", unique("shmkit-inv-channel")), config.size()).unwrap();
    let addr = address(&seg);
    let before = inventory::find(&addr, false).unwrap();
    assert_eq!((before.kind, before.channel), (Kind::PosixShm, None));

    spsc::create(&seg, 0, config).unwrap();
    let o = inventory::find(&addr, true).unwrap();
    assert_eq!(o.kind, Kind::Channel);
    assert_eq!(
        o.channel,
        Some(ChannelInfo {
            flavor: "spsc".into(),
            backing: Kind::PosixShm,
        })
    );
    assert_eq!(o.backing_kind(), Kind::PosixShm);
    assert_eq!(o.size, Some(config.size() as u64));
    // Held as its segment is: this process maps it, so it is in use.
    let me = std::process::id() as i32;
    let holders = o.holders.as_ref().expect("holders were scanned");
    assert!(holders.iter().any(|h| h.pid == me && h.maps), "{holders:?}");
    assert_eq!(o.orphan(), Orphan::No);
    inventory::check_removable(&o).unwrap();
    // Its own kind in listings, and no longer among the plain segments.
    assert!(listed(Kind::Channel, &addr));
    assert!(!listed(Kind::PosixShm, &addr));
}

#[test]
fn every_flavor_is_named() {
    let segs: Vec<(PosixShm, &str)> = ["spsc", "broadcast", "mpsc"]
        .into_iter()
        .map(|flavor| {
            let name = format!("/{}", unique(&format!("shmkit-inv-{flavor}")));
            (PosixShm::create(&name, 1 << 16).unwrap(), flavor)
        })
        .collect();
    spsc::create(&segs[0].0, 0, SpscConfig::new(4096)).unwrap();
    broadcast::create(&segs[1].0, 0, broadcast::BroadcastConfig::new(4096)).unwrap();
    mpsc::create(&segs[2].0, 0, mpsc::MpscConfig::new(4096)).unwrap();
    let all = inventory::list(&ListOptions {
        kinds: vec![Kind::Channel],
        holders: false,
    })
    .unwrap();
    for (seg, flavor) in &segs {
        let o = all
            .objects
            .iter()
            .find(|o| o.address == address(seg))
            .unwrap_or_else(|| panic!("{} not listed as a channel", seg.name()));
        assert_eq!(o.channel.as_ref().unwrap().flavor, *flavor);
    }
}
