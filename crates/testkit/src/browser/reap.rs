//! Killing a script with everything it started. Playwright starts chromium
//! in a process group of its own and kills it when node exits, which a node
//! killed at the deadline never does; chromium would then linger until it
//! notices its DevTools pipe closed. So the script's descendants are found
//! while it still runs, and their process groups are killed with its own.
//! (Debian's chromium also starts crash handlers that detach at once; they
//! leave by themselves when chromium is gone.)

use std::collections::BTreeSet;
use std::process::Stdio;

/// SIGKILLs the process group of `root` (the script, started as a group
/// leader) and the process groups of every process descended from it.
pub(super) fn kill_tree(root: u32) {
    let table = processes();
    let mut groups = BTreeSet::from([root]);
    let mut parents = vec![root];
    while let Some(parent) = parents.pop() {
        for process in table.iter().filter(|process| process.ppid == parent) {
            groups.insert(process.pgrp);
            parents.push(process.pid);
        }
    }
    let mut kill = std::process::Command::new("kill");
    kill.args(["-KILL", "--"]);
    kill.args(groups.iter().map(|group| format!("-{group}")));
    // Groups that are gone already make `kill` fail, harmlessly.
    let _ = kill.stdout(Stdio::null()).stderr(Stdio::null()).status();
}

#[derive(Debug)]
struct Process {
    pid: u32,
    ppid: u32,
    pgrp: u32,
}

/// Every process in /proc with its parent and process group.
fn processes() -> Vec<Process> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command's closing parenthesis: state, ppid, pgrp.
            let (_, rest) = stat.rsplit_once(')')?;
            let mut fields = rest.split_whitespace().skip(1);
            let ppid = fields.next()?.parse().ok()?;
            let pgrp = fields.next()?.parse().ok()?;
            Some(Process { pid, ppid, pgrp })
        })
        .collect()
}
