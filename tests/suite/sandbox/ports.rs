//! Ports the sandbox hands its children: clear of the ephemeral range, where
//! an outgoing connection could take one before the child binds it.

use std::collections::BTreeSet;
use std::net::TcpListener;

use hubwright_sandbox::ports::{ephemeral_range, free_port};

#[test]
fn a_free_port_is_below_the_ephemeral_range_bindable_and_drawn_at_random() {
    let (low, high) = ephemeral_range();
    assert!(low <= high, "ephemeral range {low}-{high}");
    let picks: Vec<u16> = (0..50).map(|_| free_port().unwrap()).collect();
    for &port in &picks {
        assert!(
            port < low,
            "port {port} is in the ephemeral range {low}-{high}, where an outgoing connection can take it"
        );
        TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|err| panic!("port {port} was handed out but cannot be bound: {err}"));
    }
    let distinct: BTreeSet<u16> = picks.iter().copied().collect();
    assert!(
        distinct.len() >= 45,
        "parallel test processes would collide: 50 picks gave {} ports",
        distinct.len()
    );
}
