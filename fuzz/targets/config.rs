//! Fuzz target: the configuration loader, TOML to validated settings and definitions. The input
//! is `srv-opr.toml`, a NUL byte, then `measures.toml`, written into a directory of this
//! process's own; loading either gives a configuration or every problem, never a panic.

use std::path::PathBuf;

fn main() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("srv-opr-fuzz-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory of the fuzzer's own");
    afl::fuzz!(|data: &[u8]| {
        let (settings, measures) = match data.iter().position(|&b| b == 0) {
            Some(i) => (&data[..i], &data[i + 1..]),
            None => (data, &[][..]),
        };
        std::fs::write(dir.join("srv-opr.toml"), settings).expect("write");
        std::fs::write(dir.join("measures.toml"), measures).expect("write");
        if let Err(e) = srv_opr::config::Config::load(Some(&dir), &[]) {
            // Bounded, whatever was in the files.
            assert!(e.to_string().len() < 64 * 1024);
        }
    });
}
