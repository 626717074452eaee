//! Session tokens, CSRF tokens and sign-in throttling (passwords are `crest_store::users`).

pub use crest_store::users::verify_password;
use crest_store::SignInLimit;
use sha2::{Digest, Sha256};

/// Sessions end after this long without a request.
pub const IDLE_TIMEOUT: i64 = 30 * 60;
/// Sessions end this long after login whatever happens.
pub const ABSOLUTE_TIMEOUT: i64 = 12 * 60 * 60;

/// A fresh random token: 256 bits, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    // Without randomness there must be no session at all.
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    hex::encode(b)
}

/// SHA-256 of a token, hex: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Compares secrets without leaking where they differ.
pub fn same(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Sign-in throttling, per user name and per client address: a policy over records kept in
/// the store, so every server sharing the database applies the same limits. The first few
/// failures are free; after that each further attempt waits a delay that doubles with every
/// failure, up to a short cap for a user name (an attacker cannot lock the real user out for
/// long) and a longer one for an address. An attempt is counted when it starts, before the slow
/// password hash, so parallel guesses cannot all slip through.
#[derive(Clone, Copy)]
pub struct Policy {
    /// Failures allowed before any delay.
    free: i64,
    /// The longest delay.
    max_delay_ms: i64,
    /// Whether attempts under way count towards `free`.
    in_flight_counts: bool,
}

/// A person signs in once at a time: attempts under way count as failures until they end, so
/// parallel guesses at one name cannot outrun the limit.
pub const NAME: Policy = Policy {
    free: 5,
    max_delay_ms: 30_000,
    in_flight_counts: true,
};

/// Many staff may sign in from one hospital address: twenty attempts may be under way at once
/// (each takes a fraction of a second), and attempts under way count with the failures, so
/// parallel guesses from one address cannot outrun its limit either; the twenty-first at the
/// same moment waits a second.
pub const ADDRESS: Policy = Policy {
    free: 20,
    max_delay_ms: 15 * 60_000,
    in_flight_counts: true,
};

/// Failures are forgotten this long after the last one.
pub const WINDOW_MS: i64 = 15 * 60_000;
/// Attempts under way from one address at once, beyond which more wait a second.
const MAX_IN_FLIGHT: i64 = 64;
/// An attempt still "under way" after this long was cut off (a server stopped): not counted.
const STALE_MS: i64 = 60_000;

/// How long `l` must still wait before its next attempt, in milliseconds (0: it may go).
pub fn wait_ms(l: &SignInLimit, p: Policy, now: i64) -> i64 {
    let in_flight = if now - l.started_ms > STALE_MS {
        0
    } else {
        l.in_flight
    };
    let failures = if now - l.last_ms >= WINDOW_MS {
        0
    } else {
        l.failures
    };
    if in_flight >= MAX_IN_FLIGHT {
        return 1000;
    }
    let tried = failures + if p.in_flight_counts { in_flight } else { 0 };
    if tried < p.free {
        return 0;
    }
    if in_flight > 0 {
        // One throttled attempt at a time: the next waits for this one's outcome.
        return 1000;
    }
    let over = (failures - p.free).clamp(0, 20);
    let delay = (1000_i64 << over).min(p.max_delay_ms);
    (delay - (now - l.last_ms)).max(0)
}

/// Counts an attempt starting at `now`.
pub fn start(l: &mut SignInLimit, now: i64) {
    if now - l.started_ms > STALE_MS {
        l.in_flight = 0;
    }
    if now - l.last_ms >= WINDOW_MS {
        l.failures = 0;
    }
    l.in_flight += 1;
    l.started_ms = now;
}

/// Records how an attempt ended: a success clears the record's failures.
pub fn finish(l: &mut SignInLimit, ok: bool, now: i64) {
    l.in_flight = (l.in_flight - 1).max(0);
    if ok {
        l.failures = 0;
    } else {
        l.failures += 1;
        l.last_ms = now;
    }
}

/// The address a sign-in is throttled by: an IPv4 address as it is, an IPv6 address by its
/// /64 (one subscriber's network: they hold every address in it), anything else as given.
pub fn throttle_address(address: &str) -> String {
    match address.trim().parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(ip) => ip.to_string(),
        Err(_) => address.to_string(),
    }
}

/// Milliseconds since 1970.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (token(), token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(token_hash("abc").len(), 64);
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    fn fresh(key: &str) -> SignInLimit {
        SignInLimit {
            key: key.into(),
            ..Default::default()
        }
    }

    #[test]
    fn five_failures_are_free_then_each_attempt_waits_a_growing_short_delay() {
        let t = 1_000_000_000;
        let mut l = fresh("name:u");
        for _ in 0..5 {
            assert_eq!(wait_ms(&l, NAME, t), 0);
            start(&mut l, t);
            finish(&mut l, false, t);
        }
        assert_eq!(wait_ms(&l, NAME, t), 1000, "the first delay is a second");
        // The delay doubles, capped at 30 s for a name: never a long lock-out.
        for _ in 0..40 {
            start(&mut l, t);
            finish(&mut l, false, t);
        }
        assert_eq!(wait_ms(&l, NAME, t), 30_000);
        assert_eq!(wait_ms(&l, NAME, t + 30_000), 0);
        start(&mut l, t);
        finish(&mut l, true, t);
        assert_eq!(wait_ms(&l, NAME, t), 0, "success forgets");
        // Failures are forgotten after the window.
        for _ in 0..10 {
            start(&mut l, t);
            finish(&mut l, false, t);
        }
        assert_eq!(wait_ms(&l, NAME, t + WINDOW_MS), 0);
    }

    #[test]
    fn parallel_attempts_are_counted_before_the_hash() {
        let t = 5_000_000;
        let mut l = fresh("name:u");
        let started = (0..40)
            .filter(|_| {
                let go = wait_ms(&l, NAME, t) == 0;
                if go {
                    start(&mut l, t);
                }
                go
            })
            .count();
        assert_eq!(started, 5, "only the free attempts run at once");
        // An attempt cut off by a stopped server stops counting after a minute.
        assert_eq!(wait_ms(&l, NAME, t + STALE_MS + 1), 0);
    }

    #[test]
    fn an_address_trying_many_names_is_slowed() {
        let t = 9_000_000;
        let mut a = fresh("addr:6.6.6.6");
        for _ in 0..20 {
            assert_eq!(wait_ms(&a, ADDRESS, t), 0);
            start(&mut a, t);
            finish(&mut a, false, t);
        }
        assert!(wait_ms(&a, ADDRESS, t) > 0, "per-address limit");
        // Sixty-four at once from one address: twenty run, the rest wait a second, so guesses
        // raced in parallel get no further than guesses in turn.
        let mut raced = fresh("addr:10.0.0.1");
        let started = (0..64)
            .filter(|_| {
                let go = wait_ms(&raced, ADDRESS, t) == 0;
                if go {
                    start(&mut raced, t);
                }
                go
            })
            .count();
        assert_eq!(started, 20);
        assert_eq!(wait_ms(&raced, ADDRESS, t), 1000);
        // As they end well, the next ones go.
        finish(&mut raced, true, t);
        assert_eq!(wait_ms(&raced, ADDRESS, t), 0);
    }

    #[test]
    fn an_ipv6_address_counts_by_its_slash_64() {
        assert_eq!(
            throttle_address("2001:db8:1:2:3:4:5:6"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(
            throttle_address("2001:db8:1:2:ffff::1"),
            "2001:db8:1:2::/64"
        );
        assert_eq!(throttle_address("192.0.2.7"), "192.0.2.7");
        assert_eq!(throttle_address("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(throttle_address("not an address"), "not an address");
    }
}
