//! Session tokens, CSRF tokens and sign-in throttling (passwords are `crest_store::users`).

pub use crest_store::users::verify_password;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Sessions end after this long without a request.
pub const IDLE_TIMEOUT: i64 = 30 * 60;
/// Sessions end this long after login whatever happens.
pub const ABSOLUTE_TIMEOUT: i64 = 12 * 60 * 60;

/// A fresh random token: 256 bits, hex.
pub fn token() -> String {
    let mut b = [0u8; 32];
    // Without randomness there must be no session at all.
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    hex(&b)
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a token, hex: what the store keeps instead of the token.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Compares secrets without leaking where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Login throttling, per user name and per client address. The first few failures are free;
/// after that each further attempt must wait a delay that doubles with every failure, up to a
/// short cap for a user name (so an attacker cannot lock the real user out for long) and a
/// longer one for an address. An attempt is counted when it starts, before the slow password
/// hash, so parallel guesses cannot all slip through; memory is bounded by evicting the
/// stalest entries.
pub struct RateLimit {
    names: Mutex<Buckets>,
    addresses: Mutex<Buckets>,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            // A person signs in once at a time: attempts under way count as failures until
            // they end, so parallel guesses at one name cannot outrun the limit.
            names: Mutex::new(Buckets::new(Policy {
                free: 5,
                max_delay: Duration::from_secs(30),
                in_flight_counts: true,
            })),
            // Many staff may sign in at once from one hospital address: only failures count,
            // and attempts under way are capped well above a busy morning.
            addresses: Mutex::new(Buckets::new(Policy {
                free: 20,
                max_delay: Duration::from_secs(15 * 60),
                in_flight_counts: false,
            })),
        }
    }
}

/// Failures are forgotten this long after the last one.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// At most this many names (and as many addresses) are tracked at once.
const MAX_TRACKED: usize = 10_000;

#[derive(Clone, Copy)]
struct Policy {
    /// Failures allowed before any delay.
    free: u32,
    /// The longest delay.
    max_delay: Duration,
    /// Whether attempts under way count towards `free`.
    in_flight_counts: bool,
}

/// Attempts under way from one address at once, beyond which more wait a second.
const MAX_IN_FLIGHT: u32 = 64;

#[derive(Clone, Copy)]
struct Bucket {
    failures: u32,
    in_flight: u32,
    last: Instant,
}

struct Buckets {
    policy: Policy,
    map: HashMap<String, Bucket>,
}

impl Buckets {
    fn new(policy: Policy) -> Buckets {
        Buckets {
            policy,
            map: HashMap::new(),
        }
    }

    /// How long `key` must still wait before its next attempt (zero: it may go now).
    fn wait(&self, key: &str, now: Instant) -> Duration {
        let Some(b) = self.map.get(key) else {
            return Duration::ZERO;
        };
        let tried = b.failures
            + if self.policy.in_flight_counts {
                b.in_flight
            } else {
                0
            };
        if b.in_flight >= MAX_IN_FLIGHT {
            return Duration::from_secs(1);
        }
        if tried < self.policy.free {
            return Duration::ZERO;
        }
        if b.in_flight > 0 {
            // One throttled attempt at a time: the next waits for this one's outcome.
            return Duration::from_secs(1);
        }
        let over = (b.failures - self.policy.free).min(20);
        let delay = Duration::from_secs(1u64 << over).min(self.policy.max_delay);
        delay.saturating_sub(now.duration_since(b.last))
    }

    fn start(&mut self, key: &str, now: Instant) {
        if !self.map.contains_key(key) && self.map.len() >= MAX_TRACKED {
            self.map
                .retain(|_, b| b.in_flight > 0 || now.duration_since(b.last) < WINDOW);
            if self.map.len() >= MAX_TRACKED {
                // Still full: forget the stalest idle entry.
                if let Some(k) = self
                    .map
                    .iter()
                    .filter(|(_, b)| b.in_flight == 0)
                    .min_by_key(|(_, b)| b.last)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&k);
                }
            }
        }
        let b = self.map.entry(key.to_string()).or_insert(Bucket {
            failures: 0,
            in_flight: 0,
            last: now,
        });
        if b.in_flight == 0 && now.duration_since(b.last) >= WINDOW {
            b.failures = 0;
        }
        b.in_flight += 1;
    }

    fn finish(&mut self, key: &str, ok: bool, now: Instant) {
        if ok {
            self.map.remove(key);
            return;
        }
        if let Some(b) = self.map.get_mut(key) {
            b.in_flight = b.in_flight.saturating_sub(1);
            b.failures += 1;
            b.last = now;
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// A login attempt under way; say how it ended with [`RateLimit::finish`].
#[must_use]
#[derive(Debug)]
pub struct Attempt {
    name: String,
    address: String,
}

impl RateLimit {
    /// Starts an attempt for `name` from `address`, or says how many seconds to wait.
    pub fn start(&self, name: &str, address: &str) -> Result<Attempt, u64> {
        let now = Instant::now();
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        let wait = names.wait(name, now).max(addresses.wait(address, now));
        if !wait.is_zero() {
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        names.start(name, now);
        addresses.start(address, now);
        Ok(Attempt {
            name: name.to_string(),
            address: address.to_string(),
        })
    }

    /// Records how an attempt ended: success forgets the name's failures (the address keeps
    /// its own, so one good account does not unlock guessing at others).
    pub fn finish(&self, attempt: Attempt, ok: bool) {
        let now = Instant::now();
        self.names
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish(&attempt.name, ok, now);
        let mut addresses = self.addresses.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            if let Some(b) = addresses.map.get_mut(&attempt.address) {
                b.in_flight = b.in_flight.saturating_sub(1);
            }
        } else {
            addresses.finish(&attempt.address, false, now);
        }
    }

    /// Names and addresses tracked (for the test that memory stays bounded).
    #[cfg(test)]
    pub fn tracked(&self) -> (usize, usize) {
        (
            self.names.lock().unwrap_or_else(|e| e.into_inner()).len(),
            self.addresses
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
        )
    }
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

    #[test]
    fn five_failures_are_free_then_each_attempt_waits_a_growing_short_delay() {
        let r = RateLimit::default();
        for _ in 0..5 {
            let a = r.start("u", "1.1.1.1").unwrap();
            r.finish(a, false);
        }
        let wait = r.start("u", "2.2.2.2").unwrap_err();
        assert_eq!(wait, 1, "the first delay is a second");
        assert!(
            r.start("v", "1.1.1.1").is_ok(),
            "another name is not slowed"
        );
        // The delay doubles, capped at 30 s for a name: never a long lock-out.
        let mut b = Buckets::new(Policy {
            free: 5,
            max_delay: Duration::from_secs(30),
            in_flight_counts: true,
        });
        let t = Instant::now();
        for _ in 0..40 {
            b.start("u", t);
            b.finish("u", false, t);
        }
        assert_eq!(b.wait("u", t), Duration::from_secs(30));
        assert_eq!(b.wait("u", t + Duration::from_secs(30)), Duration::ZERO);
        b.start("u", t);
        b.finish("u", true, t);
        assert_eq!(b.wait("u", t), Duration::ZERO, "success forgets");
    }

    #[test]
    fn parallel_attempts_are_counted_before_the_hash() {
        let r = RateLimit::default();
        let started: Vec<_> = (0..40)
            .filter_map(|_| r.start("u", "9.9.9.9").ok())
            .collect();
        assert_eq!(started.len(), 5, "only the free attempts run at once");
    }

    #[test]
    fn an_address_trying_many_names_is_slowed_and_memory_stays_bounded() {
        let r = RateLimit::default();
        for i in 0..20 {
            let a = r.start(&format!("name{i}"), "6.6.6.6").unwrap();
            r.finish(a, false);
        }
        assert!(r.start("name99", "6.6.6.6").is_err(), "per-address limit");
        assert!(r.start("name99", "7.7.7.7").is_ok());
        let r = RateLimit::default();
        for i in 0..(MAX_TRACKED + 500) {
            let a = r.start(&format!("n{i}"), &format!("a{i}")).unwrap();
            r.finish(a, false);
        }
        let (names, addresses) = r.tracked();
        assert!(
            names <= MAX_TRACKED && addresses <= MAX_TRACKED,
            "{names} {addresses}"
        );
    }
}
