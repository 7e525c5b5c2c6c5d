//! What a holder of a reloadable file (the templates, the policy) remembers
//! between reads, so that a poll acts only on a change and reports a file
//! that does not load once, and only when it stays that way.

/// Digests a holder has read, by what came of them.
#[derive(Debug, Default)]
pub(crate) struct Rereads {
    /// Digest of what was last read and acted on, loaded or not: a poll
    /// compares against it, so a broken file is reported once rather than
    /// at every poll.
    seen: Option<String>,
    /// Digest of files a poll found not loading, not reported yet: a tool
    /// that writes a file in place (not by rename) can be caught half way,
    /// and the next poll finds it whole, or the same and broken.
    settling: Option<String>,
}

impl Rereads {
    /// Remembers `digest` as read and acted on (what start-up loaded).
    pub(crate) fn having_seen(digest: String) -> Self {
        Self {
            seen: Some(digest),
            settling: None,
        }
    }

    /// True when a poll (not `force`d) finds what it last acted on.
    pub(crate) fn unchanged(&self, digest: &str, force: bool) -> bool {
        !force && self.seen.as_deref() == Some(digest)
    }

    /// Whether to act on files of `digest` that did or did not load: false
    /// for files a poll finds not loading for the first time (it waits for
    /// the next); otherwise true, and they are remembered as seen.
    pub(crate) fn act(&mut self, digest: &str, loaded: bool, force: bool) -> bool {
        if !loaded && !force && self.settling.as_deref() != Some(digest) {
            self.settling = Some(digest.to_owned());
            return false;
        }
        self.settling = None;
        self.seen = Some(digest.to_owned());
        true
    }

    /// Forgets what was read, so the next poll reads and acts again.
    pub(crate) fn forget(&mut self) {
        self.seen = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_waits_one_read_before_acting_on_files_that_do_not_load() {
        let mut rereads = Rereads::having_seen("a".into());
        assert!(rereads.unchanged("a", false));
        assert!(!rereads.unchanged("a", true), "forced reads always act");
        assert!(!rereads.act("b", false, false), "first sight of broken b");
        assert!(!rereads.unchanged("b", false));
        assert!(rereads.act("b", false, false), "b again: report it");
        assert!(rereads.unchanged("b", false));
        assert!(rereads.act("c", true, false), "c loads: act at once");
        assert!(rereads.act("d", false, true), "SIGHUP reports at once");
        rereads.forget();
        assert!(!rereads.unchanged("d", false));
    }
}
