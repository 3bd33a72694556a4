//! Raw log tests: round trips, replay, truncated and corrupt files.

use super::*;
use crate::events::{self as ev, Header, RssMember};

fn hd(ts_ns: u64, pid: u32, tid: u32) -> Header {
    Header {
        cpu: 1,
        ts_ns,
        pid,
        tid,
    }
}

fn sample_events() -> Vec<Event> {
    vec![
        Event::Fork(ev::Fork {
            header: hd(1_100, 10, 10),
            child_pid: 11,
            child_tid: 11,
            comm: "parent".into(),
        }),
        Event::Exec(ev::Exec {
            header: hd(1_200, 11, 11),
            old_tid: 11,
            comm: "child".into(),
            filename: "/usr/bin/child".into(),
        }),
        Event::OnCpu(ev::OnCpu {
            header: hd(1_500, 11, 11),
            start_ns: 1_250,
            cpu_ns: 250,
            cpu_total_ns: 900,
            prev_state: 1,
            flags: 0,
            stints: 1,
        }),
        Event::Comm(ev::Comm {
            header: hd(1_600, 11, 11),
            comm: "renamed".into(),
        }),
        Event::Faults(ev::Faults {
            header: hd(1_700, 11, 11),
            first_ns: 1_650,
            count: 3,
            major: 1,
        }),
        Event::Rss(ev::Rss {
            header: hd(1_800, 11, 11),
            member: RssMember::Anon,
            size_bytes: 8192,
        }),
        Event::Alloc(ev::Alloc {
            header: hd(1_850, 11, 11),
            op: ev::AllocOp::Mmap,
            size: 4096,
            address: 0x7f00_0000,
        }),
        Event::Sample(ev::Sample {
            header: hd(1_870, 11, 11),
            user_stack_id: Some(3),
            kernel_stack_id: None,
        }),
        Event::Exit(ev::Exit {
            header: hd(1_900, 11, 11),
            exit_code: 2 << 8,
            group_dead: true,
            min_flt: 12,
            maj_flt: 0,
            sum_exec_runtime_ns: 250,
        }),
    ]
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lxprof-rawlog-{name}-{}.bin", std::process::id()))
}

fn write_log(path: &Path) -> Vec<Event> {
    let events = sample_events();
    let mut w = RawLogWriter::create(path).unwrap();
    w.write_meta(&Meta::Start { start_ns: 1_000 }).unwrap();
    w.write_meta(&Meta::Seed(SeedProcess {
        pid: 10,
        ppid: 1,
        comm: "parent".into(),
        exe: Some("/usr/bin/parent".into()),
        cmdline: vec!["parent".into()],
        threads: vec![(10, "parent".into())],
    }))
    .unwrap();
    w.write_meta(&Meta::AllocRecorded).unwrap();
    for e in &events {
        w.write_record(&encode_event(e)).unwrap();
    }
    w.write_record(&[1, 2, 3]).unwrap(); // undecodable
    w.write_meta(&Meta::Role {
        pid: 11,
        role: "extension".into(),
    })
    .unwrap();
    let info = RecordingInfo {
        command: vec!["parent".into()],
        root_pid: Some(10),
        lost_events: 4,
        lost_per_cpu: vec![1, 3],
        kernel_release: "6.1.0-test".into(),
        ..RecordingInfo::default()
    };
    w.write_meta(&Meta::Finish {
        end_ns: 2_000,
        info,
    })
    .unwrap();
    w.finish().unwrap();
    events
}

#[test]
fn encode_is_the_inverse_of_decode() {
    for e in sample_events() {
        assert_eq!(Event::from_bytes(&encode_event(&e)).unwrap(), e);
    }
}

#[test]
fn records_round_trip() {
    let path = scratch("roundtrip");
    let events = write_log(&path);
    let records: Vec<Record> = RawLogReader::open(&path)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), 3 + events.len() + 3);
    assert_eq!(records[0], Record::Meta(Meta::Start { start_ns: 1_000 }));
    let kernel: Vec<Vec<u8>> = RawLogReader::open(&path)
        .unwrap()
        .kernel_records()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(kernel.len(), events.len() + 1);
    assert_eq!(records[2], Record::Meta(Meta::AllocRecorded));
    for (r, e) in records[3..].iter().zip(&events) {
        assert_eq!(r, &Record::Kernel(encode_event(e)));
    }
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn replay_rebuilds_the_recording() {
    let path = scratch("replay");
    let events = write_log(&path);
    let rec = replay(&path).unwrap();
    // The same inputs given to a builder directly.
    let mut b = ModelBuilder::new(1_000);
    b.seed_process(SeedProcess {
        pid: 10,
        ppid: 1,
        comm: "parent".into(),
        exe: Some("/usr/bin/parent".into()),
        cmdline: vec!["parent".into()],
        threads: vec![(10, "parent".into())],
    });
    b.set_alloc_recorded();
    events.iter().for_each(|e| b.push(e.clone()));
    b.set_role(11, "extension".into());
    let mut info = RecordingInfo {
        command: vec!["parent".into()],
        root_pid: Some(10),
        lost_events: 4,
        lost_per_cpu: vec![1, 3],
        kernel_release: "6.1.0-test".into(),
        ..RecordingInfo::default()
    };
    info.decode_errors = 1;
    assert_eq!(rec, b.finish(2_000, info));
    let child = rec.process(11).unwrap();
    assert_eq!(
        (child.role.as_str(), child.comm.as_str()),
        ("extension", "renamed")
    );
    // Allocations replay too: the child's mmap, and zeros for the parent.
    assert_eq!(
        child.alloc.map(|a| (a.mmap_count, a.mmap_bytes)),
        Some((1, 4096))
    );
    assert_eq!(child.alloc_points.len(), 1);
    assert_eq!(
        rec.process(10).and_then(|p| p.alloc),
        Some(crate::model::AllocTotals::default())
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn truncated_and_corrupt_logs_give_typed_errors() {
    let path = scratch("full");
    write_log(&path);
    let full = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let read_all = |bytes: &[u8]| -> Result<usize, RawLogError> {
        let reader = RawLogReader::new(PathBuf::from("mem"), bytes)?;
        let mut n = 0;
        for r in reader {
            r?;
            n += 1;
        }
        Ok(n)
    };
    assert!(read_all(&full).is_ok());
    // Every prefix: either a clean record boundary or a typed error.
    let mut boundaries = 0;
    for len in 0..full.len() {
        match read_all(&full[..len]) {
            Ok(_) => boundaries += 1,
            Err(RawLogError::BadMagic { .. } | RawLogError::Truncated { .. }) => {}
            Err(e) => panic!("prefix {len}: unexpected {e}"),
        }
    }
    assert_eq!(boundaries, 15, "header end and 14 record ends");
    assert!(matches!(
        read_all(b"NOTALOG!\x01\0\0\0"),
        Err(RawLogError::BadMagic { .. })
    ));
    let mut v = full.clone();
    v[8] = 99;
    assert!(matches!(
        read_all(&v),
        Err(RawLogError::UnsupportedVersion { version: 99, .. })
    ));
    let mut v = full.clone();
    v[12] = 7;
    assert!(matches!(
        read_all(&v),
        Err(RawLogError::BadTag {
            tag: 7,
            offset: 12,
            ..
        })
    ));
    let mut v = full[..12].to_vec();
    v.extend([0, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(read_all(&v), Err(RawLogError::TooLong { .. })));
    let mut v = full[..12].to_vec();
    v.extend([1, 2, 0, 0, 0, b'{', b'x']);
    assert!(matches!(read_all(&v), Err(RawLogError::BadMeta { .. })));
}

#[test]
fn replay_needs_a_start_record() {
    let path = scratch("nostart");
    let mut w = RawLogWriter::create(&path).unwrap();
    w.write_record(&encode_event(&sample_events()[0])).unwrap();
    w.finish().unwrap();
    assert!(matches!(
        replay(&path),
        Err(RawLogError::MissingStart { .. })
    ));
    std::fs::remove_file(&path).unwrap();
    assert!(matches!(
        replay(Path::new("/nonexistent/events.bin")),
        Err(RawLogError::Io { .. })
    ));
}
