//! The committed golden vectors (`zmtp/tests/golden/libzmq.hex`) are reproducible: re-running the capture
//! script against the harness's pyzmq/libzmq gives exactly the committed file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use zmtp_interop::{repo_root, Peer};

#[test]
fn capture_golden_reproduces_committed_vectors() {
    let committed = std::fs::read_to_string(repo_root().join("zmtp/tests/golden/libzmq.hex")).unwrap();
    let mut capture = Peer::spawn("capture_golden", std::iter::empty::<&str>());
    // The script stops itself after 60 s; it normally takes well under a second.
    let produced = capture.read_to_end(Duration::from_secs(70));
    let status = capture.wait(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "capture_golden.py exited with {status:?}\n{}",
        capture.stderr()
    );

    if produced != committed {
        let (a, b): (Vec<_>, Vec<_>) = (committed.lines().collect(), produced.lines().collect());
        let first = a.iter().zip(&b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!(
            "capture_golden.py output differs from zmtp/tests/golden/libzmq.hex at line {} \
             ({} committed lines, {} produced)\n  committed: {:?}\n  produced:  {:?}",
            first + 1,
            a.len(),
            b.len(),
            a.get(first),
            b.get(first)
        );
    }
}
