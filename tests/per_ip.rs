//! Per-address limits, before a thread is spent: through the public API with raw sockets,
//! 127.0.0.2 acting as another client address.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use common::*;
use syncws::Server;

/// A TCP connection to `to` from the loopback address `from`.
fn connect_from(from: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::from((from, 0)).into()).unwrap();
    s.connect(&to.into()).unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// Sends an upgrade request from `from`; the response's status, and the socket (open).
fn upgrade_from(from: [u8; 4], to: SocketAddr) -> (u16, TcpStream) {
    let mut s = connect_from(from, to);
    s.write_all(upgrade_request("/", "").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, s)
}

#[test]
fn one_address_cannot_take_every_slot() {
    let server = Server::new(config().max_connections_per_ip(3));
    let srv = start(&server, Mode::Async);
    let addr = srv.local_addr();
    let held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let (status, s) = upgrade_from([127, 0, 0, 1], addr);
            assert_eq!(status, 101);
            s
        })
        .collect();
    let resp = http_exchange(addr, upgrade_request("/", "").as_bytes());
    assert_eq!(resp.status, 429, "{}", resp.head);
    assert_eq!(resp.header("retry-after").as_deref(), Some("1"));
    let (status, _other) = upgrade_from([127, 0, 0, 2], addr);
    assert_eq!(status, 101, "another address is unaffected");
    drop(held);
    wait_until("the address's slots are free again", || {
        upgrade_from([127, 0, 0, 1], addr).0 == 101
    });
    srv.stop();
}

#[test]
fn new_connections_per_second_per_address() {
    let server = Server::new(config().new_connections_per_ip(2));
    let srv = start(&server, Mode::Async);
    let addr = srv.local_addr();
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(upgrade_from([127, 0, 0, 3], addr).0);
    }
    // Three within a second from one address: the third is refused (on a machine so slow that
    // a second passed between them, the window restarted and all may pass).
    if started.elapsed() < std::time::Duration::from_millis(900) {
        assert!(statuses.contains(&429), "{statuses:?}");
    }
    assert_eq!(
        upgrade_from([127, 0, 0, 4], addr).0,
        101,
        "another address is unaffected"
    );
    srv.stop();
}
