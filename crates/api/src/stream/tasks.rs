//! The hub's two tasks: the process's one LISTEN connection, which wakes
//! the streams of a run when it gets events (with a catch-up read after a
//! reconnect and every fallback interval), and the re-check of every open
//! stream's credential.

use std::collections::HashSet;
use std::sync::Weak;
use std::time::Duration;

use hubwright_state::Store;
use hubwright_state::store::event_feed::EventNote;
use tokio::sync::watch;

use super::hub::{Credential, Inner, lock, until_true};
use crate::oidc::Rejected;

/// Catches up on notifications that may have been missed: one query over
/// every followed run. False once the hub is gone.
async fn catch_up(weak: &Weak<Inner>, store: &Store) -> bool {
    let Some(inner) = weak.upgrade() else {
        return false;
    };
    let runs = inner.followed_runs();
    if runs.is_empty() {
        return true;
    }
    match store.newest_events(&runs).await {
        Ok(newest) => {
            for (run_id, id) in newest {
                inner.announce(run_id, id);
            }
        }
        Err(err) => tracing::warn!(error = %err, "event streams: cannot read newest events"),
    }
    true
}

/// The one LISTEN connection of the process, reconnected when lost.
pub(super) async fn listen(
    weak: Weak<Inner>,
    store: Store,
    fallback: Duration,
    mut closed: watch::Receiver<bool>,
) {
    let mut backoff = Duration::from_millis(250);
    loop {
        let mut listener = match store.event_listener().await {
            Ok(listener) => {
                backoff = Duration::from_millis(250);
                listener
            }
            Err(err) => {
                tracing::warn!(error = %err, "event streams: cannot listen; falling back to reads");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = until_true(&mut closed) => return,
                }
                backoff = (backoff * 2).min(fallback);
                if !catch_up(&weak, &store).await {
                    return;
                }
                continue;
            }
        };
        // Listening now: whatever was sent before is read once.
        if !catch_up(&weak, &store).await {
            return;
        }
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + fallback, fallback);
        loop {
            tokio::select! {
                note = listener.recv() => match note {
                    Ok(EventNote::Events { run_id, newest }) => match weak.upgrade() {
                        Some(inner) => inner.announce(run_id, newest),
                        None => return,
                    },
                    Ok(EventNote::Lost) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "event streams: listener failed; reconnecting");
                        break;
                    }
                },
                _ = tick.tick() => if !catch_up(&weak, &store).await {
                    return;
                },
                () = until_true(&mut closed) => return,
            }
        }
    }
}

/// Checks every open stream's credential each `every`; a credential that no
/// longer authenticates ends its streams. A failing database ends none.
pub(super) async fn recheck(
    weak: Weak<Inner>,
    store: Store,
    every: Duration,
    mut closed: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = until_true(&mut closed) => return,
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let held: Vec<(String, Credential)> = lock(&inner.shared)
            .tokens
            .iter()
            .map(|(key, token)| (key.clone(), token.credential.clone()))
            .collect();
        let mut dead = Vec::new();
        let fingerprints: Vec<String> = held
            .iter()
            .filter_map(|(_, credential)| match credential {
                Credential::Token(fingerprint) => Some(fingerprint.clone()),
                Credential::Jwt(_) | Credential::Session(_) => None,
            })
            .collect();
        if !fingerprints.is_empty() {
            match store.live_tokens(&fingerprints).await {
                Ok(live) => {
                    let live: HashSet<String> = live.into_iter().collect();
                    dead.extend(fingerprints.into_iter().filter(|f| !live.contains(f)));
                }
                Err(err) => tracing::warn!(error = %err, "event streams: cannot re-check tokens"),
            }
        }
        let sessions: Vec<String> = held
            .iter()
            .filter_map(|(_, credential)| match credential {
                Credential::Session(hash) => Some(hash.clone()),
                Credential::Token(_) | Credential::Jwt(_) => None,
            })
            .collect();
        if !sessions.is_empty() {
            match store
                .live_console_sessions(&sessions, chrono::Utc::now())
                .await
            {
                Ok(live) => {
                    let live: HashSet<String> = live.into_iter().collect();
                    dead.extend(
                        sessions
                            .into_iter()
                            .filter(|hash| !live.contains(hash))
                            .map(|hash| Credential::Session(hash).key()),
                    );
                }
                Err(err) => tracing::warn!(error = %err, "event streams: cannot re-check sessions"),
            }
        }
        for (key, credential) in &held {
            if let Credential::Jwt(jwt) = credential {
                let still = match &inner.oidc {
                    Some(oidc) => !matches!(oidc.verify(jwt).await, Err(Rejected::Token(_))),
                    None => false,
                };
                if !still {
                    dead.push(key.clone());
                }
            }
        }
        let shared = lock(&inner.shared);
        for key in dead {
            if let Some(token) = shared.tokens.get(&key) {
                tracing::info!(
                    streams = token.streams,
                    "event streams end: their token no longer authenticates"
                );
                token.revoked.send_replace(true);
            }
        }
    }
}
