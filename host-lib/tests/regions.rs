//! Every region verb of seed 001 on a volume of two simulated cards.

mod common;

use common::{format, open, pattern};
use npmu::{Mirror, ReadFrom};

const BASE_POINTER: u64 = 0x7f00_0000_0000;

#[test]
fn a_region_written_on_both_cards_reads_back_after_reopening() {
    let directory = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let volume = format(directory.path());
    eprintln!("format {:?}", started.elapsed());
    volume
        .create_region("log", 3 * 4096 + 100, BASE_POINTER)
        .unwrap();
    eprintln!("create {:?}", started.elapsed());
    let region = volume.open_region("log").unwrap();
    eprintln!("open {:?}", started.elapsed());
    let data = pattern(5000, 3);
    volume
        .write_region(&region, &data, BASE_POINTER + 4000, Mirror::Both)
        .unwrap();
    eprintln!("write {:?}", started.elapsed());
    for from in [ReadFrom::Any, ReadFrom::Primary, ReadFrom::Mirror] {
        let mut back = vec![0u8; 5000];
        volume
            .read_region(&region, &mut back, BASE_POINTER + 4000, from)
            .unwrap();
        assert_eq!(back, data, "{from:?}");
    }
    eprintln!("read {:?}", started.elapsed());
    volume.close_region(region).unwrap();
    drop(volume);
    let volume = open(directory.path());
    eprintln!("reopen {:?}", started.elapsed());
    assert_eq!(volume.list_regions(), vec!["log".to_owned()]);
    let region = volume.open_region("log").unwrap();
    let mut back = vec![0u8; 5000];
    volume
        .read_region(&region, &mut back, BASE_POINTER + 4000, ReadFrom::Mirror)
        .unwrap();
    assert_eq!(back, data);
}
