//! Micro-benchmarks of the channels' ring operations (divan): each call on its own, in one
//! process and one thread, so no cache line crosses to another core. What two processes see
//! is `shmkit bench`'s job (and `benches/channel.rs`'s); this is the cost of the code itself,
//! beside the copy it cannot avoid (`Mapping::read_at`/`write_at` against a private `memcpy`,
//! measured in the same run).
//!
//! `cargo bench -p shmkit --bench ring`

fn main() {
    #[cfg(target_os = "linux")]
    divan::main();
}

#[cfg(target_os = "linux")]
mod ring {
    use divan::counter::BytesCount;
    use divan::Bencher;
    use shmkit::channel::broadcast::{self, BroadcastConfig};
    use shmkit::channel::mpsc::{self, MpscConfig};
    use shmkit::channel::{spsc, Receiver, Sender, SpscConfig};
    use shmkit::AnonShared;

    const SIZES: [usize; 4] = [8, 64, 512, 4096];

    fn spsc_pair(seg: &AnonShared) -> (Sender<'_>, Receiver<'_>) {
        (
            Sender::open(seg, 0).unwrap(),
            Receiver::open(seg, 0).unwrap(),
        )
    }

    fn spsc_segment() -> AnonShared {
        let config = SpscConfig::new(1 << 16).max_message(4096);
        let seg = AnonShared::new(config.size()).unwrap();
        spsc::create(&seg, 0, config).unwrap();
        seg
    }

    /// A private copy of the same size: the floor of a copying send and receive.
    #[divan::bench(args = SIZES)]
    fn memcpy_private(bencher: Bencher, size: usize) {
        let src = vec![7u8; size];
        let mut dst = vec![0u8; size];
        bencher.counter(BytesCount::new(size * 2)).bench_local(|| {
            dst.copy_from_slice(divan::black_box(&src));
            divan::black_box(&mut dst);
            dst.copy_from_slice(divan::black_box(&src));
            divan::black_box(&mut dst);
        });
    }

    /// The mapping's race-free copies, in and out.
    #[divan::bench(args = SIZES)]
    fn mapping_write_read(bencher: Bencher, size: usize) {
        let seg = AnonShared::new(8192).unwrap();
        let src = vec![7u8; size];
        let mut dst = vec![0u8; size];
        bencher.counter(BytesCount::new(size * 2)).bench_local(|| {
            seg.write_at(64, divan::black_box(&src)).unwrap();
            seg.read_at(64, &mut dst).unwrap();
        });
    }

    /// One message sent and received (copied both ways).
    #[divan::bench(args = SIZES)]
    fn spsc_send_recv(bencher: Bencher, size: usize) {
        let seg = spsc_segment();
        let (mut tx, mut rx) = spsc_pair(&seg);
        let data = vec![7u8; size];
        let mut buf = Vec::with_capacity(size);
        bencher.counter(BytesCount::new(size * 2)).bench_local(|| {
            tx.try_send(divan::black_box(&data)).unwrap();
            rx.try_recv(&mut buf).unwrap();
        });
    }

    /// One message written in place (reserve, write, commit) and read in place.
    #[divan::bench(args = SIZES)]
    fn spsc_in_place(bencher: Bencher, size: usize) {
        let seg = spsc_segment();
        let (mut tx, mut rx) = spsc_pair(&seg);
        let data = vec![7u8; size];
        let mut out = vec![0u8; size];
        bencher.counter(BytesCount::new(size * 2)).bench_local(|| {
            let mut slot = tx.try_reserve(size).unwrap();
            slot.write_at(0, divan::black_box(&data)).unwrap();
            slot.commit();
            let m = rx.try_recv_in_place().unwrap();
            m.read_at(0, &mut out).unwrap();
        });
    }

    /// Sixteen 8-byte messages published with one store, then received.
    #[divan::bench]
    fn spsc_batch_of_16(bencher: Bencher) {
        let seg = spsc_segment();
        let (mut tx, mut rx) = spsc_pair(&seg);
        let m = [7u8; 8];
        let batch = [&m[..]; 16];
        let mut buf = Vec::with_capacity(8);
        bencher
            .counter(divan::counter::ItemsCount::new(16usize))
            .bench_local(|| {
                tx.send_batch(divan::black_box(&batch)).unwrap();
                for _ in 0..16 {
                    rx.try_recv(&mut buf).unwrap();
                }
            });
    }

    /// A receive that finds the channel empty: the cost of a poll.
    #[divan::bench]
    fn spsc_try_recv_empty(bencher: Bencher) {
        let seg = spsc_segment();
        let (_tx, mut rx) = spsc_pair(&seg);
        let mut buf = Vec::new();
        bencher.bench_local(|| rx.try_recv(&mut buf).is_err());
    }

    /// Announcing an eventfd wait and taking it back (the consumer's half of the eventfd path,
    /// without its system calls).
    #[divan::bench]
    fn spsc_prepare_wait(bencher: Bencher) {
        let seg = spsc_segment();
        let (_tx, mut rx) = spsc_pair(&seg);
        let mut buf = Vec::new();
        bencher.bench_local(|| {
            let armed = rx.prepare_wait().unwrap();
            let _ = rx.try_recv(&mut buf);
            armed
        });
    }

    /// One message to a broadcast channel with one consumer, and received.
    #[divan::bench(args = SIZES)]
    fn broadcast_send_recv(bencher: Bencher, size: usize) {
        let config = BroadcastConfig::new(1 << 16)
            .max_message(4096)
            .max_consumers(1);
        let seg = AnonShared::new(config.size()).unwrap();
        broadcast::create(&seg, 0, config).unwrap();
        let mut rx = broadcast::Receiver::open(&seg, 0).unwrap();
        let mut tx = broadcast::Sender::open(&seg, 0).unwrap();
        let data = vec![7u8; size];
        let mut buf = Vec::with_capacity(size);
        bencher.counter(BytesCount::new(size * 2)).bench_local(|| {
            tx.send(divan::black_box(&data)).unwrap();
            rx.try_recv(&mut buf).unwrap();
        });
    }

    /// One message through an MPSC channel (one producer here), and received.
    #[divan::bench(args = SIZES)]
    fn mpsc_send_recv(bencher: Bencher, size: usize) {
        let config = MpscConfig::new(1 << 16).max_message(4096);
        let seg = AnonShared::new(config.size()).unwrap();
        mpsc::create(&seg, 0, config).unwrap();
        let mut rx = mpsc::Receiver::open(&seg, 0).unwrap();
        let mut tx = mpsc::Sender::open(&seg, 0).unwrap();
        let data = vec![7u8; size];
        let mut buf = Vec::with_capacity(size);
        bencher.counter(BytesCount::new(size * 2)).bench_local(|| {
            tx.try_send(divan::black_box(&data)).unwrap();
            rx.try_recv(&mut buf).unwrap();
        });
    }
}
