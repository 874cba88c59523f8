//! JSON-like payloads for the permessage-deflate measurements: realistic JSON text (an
//! envelope with a page of event records, each with ids, names, e-mail addresses, timestamps,
//! amounts and nested objects) of an exact size, different for every message and derived
//! from its sequence number alone, so that a receiver can regenerate it to check every byte.
//!
//! Shared by `wsload` and `wsscale` (each includes this file with `#[path]`). Compressed on its
//! own (deflate level 6, 32 KiB window), a 1 KiB message shrinks to 0.52 of its size, 4 KiB to
//! 0.33, 16 KiB to 0.25: far from the 0.02 of `wsload`'s repeated alphabet.

use std::io::Write as _;

const FIRST: [&str; 24] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Dennis",
    "Radia",
    "Ken",
    "Sophie",
    "Linus",
    "Hedy",
    "Niklaus",
    "Katherine",
    "Tim",
    "Shafi",
    "Leslie",
    "Anita",
    "Guido",
    "Yukihiro",
    "Bjarne",
];
const LAST: [&str; 24] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "McCarthy",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Thompson",
    "Wilson",
    "Torvalds",
    "Lamarr",
    "Wirth",
    "Johnson",
    "Berners-Lee",
    "Goldwasser",
    "Lamport",
    "Borg",
    "van Rossum",
    "Matsumoto",
    "Stroustrup",
];
const DOMAINS: [&str; 8] = [
    "example.com",
    "example.org",
    "mail.example.net",
    "corp.example",
    "eu.example.com",
    "users.example.io",
    "example.co.uk",
    "staff.example.de",
];
const EVENTS: [&str; 12] = [
    "order.created",
    "order.updated",
    "order.shipped",
    "payment.authorized",
    "payment.captured",
    "payment.refunded",
    "user.signed_in",
    "user.profile_changed",
    "cart.item_added",
    "cart.item_removed",
    "invoice.issued",
    "ticket.escalated",
];
const CITIES: [(&str, &str, f64, f64); 10] = [
    ("Paris", "FR", 48.8566, 2.3522),
    ("Berlin", "DE", 52.52, 13.405),
    ("Madrid", "ES", 40.4168, -3.7038),
    ("Osaka", "JP", 34.6937, 135.5023),
    ("Toronto", "CA", 43.6532, -79.3832),
    ("Lagos", "NG", 6.5244, 3.3792),
    ("Lima", "PE", -12.0464, -77.0428),
    ("Pune", "IN", 18.5204, 73.8567),
    ("Oslo", "NO", 59.9139, 10.7522),
    ("Perth", "AU", -31.9523, 115.8613),
];
const TAGS: [&str; 12] = [
    "vip",
    "beta",
    "mobile",
    "web",
    "eu",
    "trial",
    "wholesale",
    "returning",
    "gift",
    "express",
    "flagged",
    "b2b",
];
const CURRENCIES: [&str; 5] = ["EUR", "USD", "JPY", "GBP", "CAD"];
const WORDS: [&str; 32] = [
    "the",
    "customer",
    "asked",
    "for",
    "a",
    "refund",
    "after",
    "delivery",
    "was",
    "late",
    "and",
    "two",
    "items",
    "were",
    "missing",
    "from",
    "parcel",
    "support",
    "agent",
    "confirmed",
    "replacement",
    "shipped",
    "today",
    "with",
    "tracking",
    "number",
    "sent",
    "by",
    "email",
    "please",
    "review",
    "invoice",
];

/// splitmix64: the record fields of message `seq`, reproducible anywhere.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

/// One event record.
fn record(g: &mut Gen, seq: u64, i: usize, out: &mut Vec<u8>) {
    let (first, last) = (*g.pick(&FIRST), *g.pick(&LAST));
    let (city, country, lat, lon) = *g.pick(&CITIES);
    // A timestamp in 2025 that moves with the message.
    let t = 1_735_689_600 + seq * 7 + g.below(86_400) as u64;
    let (days, secs) = (t / 86_400 - 20_089, t % 86_400);
    let (month, day) = ((days / 28) % 12 + 1, days % 28 + 1);
    let user = 10_000 + g.below(90_000);
    let _ = write!(
        out,
        "{{\"id\":\"evt_{:016x}\",\"type\":\"{}\",\"ts\":\"2025-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z\",\
         \"user\":{{\"id\":{user},\"name\":\"{first} {last}\",\"email\":\"{}.{}{}@{}\",\"verified\":{}}},\
         \"amount\":{{\"value\":{}.{:02},\"currency\":\"{}\"}},\"geo\":{{\"city\":\"{city}\",\"country\":\"{country}\",\
         \"lat\":{:.4},\"lon\":{:.4}}},\"tags\":[\"{}\",\"{}\"],\"seq\":{}}}",
        g.next(),
        g.pick(&EVENTS),
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        g.below(1000),
        first.to_ascii_lowercase(),
        last.to_ascii_lowercase().replace(' ', ""),
        g.below(100),
        g.pick(&DOMAINS),
        g.below(4) != 0,
        g.below(5000),
        g.below(100),
        g.pick(&CURRENCIES),
        lat + (g.below(2000) as f64 - 1000.0) / 10_000.0,
        lon + (g.below(2000) as f64 - 1000.0) / 10_000.0,
        g.pick(&TAGS),
        g.pick(&TAGS),
        i,
    );
}

/// Where the 16 hex digits of the sequence number start: `{"seq":"` is 8 bytes.
pub(crate) const SEQ_AT: usize = 8;

/// Appends the JSON text of message `seq`, exactly `size` bytes of ASCII, to `out`: the
/// envelope, as many records as fit, and a `note` of words filling the rest. Below about
/// 110 bytes it is the start of that text cut at `size` (text still, no longer JSON).
pub(crate) fn write(seq: u64, size: usize, out: &mut Vec<u8>) {
    let start = out.len();
    let mut g = Gen(seq ^ 0x5DEE_CE66_D1CE_4E5B);
    let _ = write!(
        out,
        "{{\"seq\":\"{seq:016x}\",\"stream\":\"events\",\"page\":{{\"cursor\":\"{:012x}\",\"more\":true}},\"items\":[",
        g.next() >> 16
    );
    const TAIL: &[u8] = b"],\"note\":\"\"}";
    let mut rec = Vec::with_capacity(512);
    for i in 0.. {
        rec.clear();
        if i > 0 {
            rec.push(b',');
        }
        record(&mut g, seq, i, &mut rec);
        if out.len() - start + rec.len() + TAIL.len() > size {
            break;
        }
        out.extend_from_slice(&rec);
    }
    out.extend_from_slice(&TAIL[..TAIL.len() - 2]);
    // The note: words until the size is reached, then the closing quote and brace.
    let end = start + size;
    let fill_to = end.saturating_sub(2);
    let mut first = true;
    while out.len() < fill_to {
        if !first {
            out.push(b' ');
        }
        first = false;
        let w = g.pick(&WORDS).as_bytes();
        let room = fill_to.saturating_sub(out.len());
        out.extend_from_slice(&w[..w.len().min(room)]);
    }
    if out.len() < end {
        let n = (end - out.len()).min(2);
        out.extend_from_slice(&b"\"}"[..n]);
    }
    out.truncate(end);
}

/// Whether `got` is exactly the payload of message `seq` of `size` bytes.
pub(crate) fn check(seq: u64, size: usize, got: &[u8]) -> bool {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    got.len() == size
        && SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            write(seq, size, &mut s);
            *s == got
        })
}
