//! Many short texts kept end to end in one string: a FHIR import holds close to a million
//! references, and one `String` each cost three times their bytes (and as many allocations).

/// Texts, numbered from 0 in the order pushed.
#[derive(Debug, Default)]
pub struct Texts {
    text: String,
    /// Where each text ends in `text`.
    ends: Vec<usize>,
}

impl Texts {
    /// How many texts.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Room for `n` more texts of about 24 bytes.
    pub fn reserve(&mut self, n: usize) {
        self.ends.reserve(n);
        self.text.reserve(n.saturating_mul(24));
    }

    /// Adds a text; its number is the count before.
    pub fn push(&mut self, s: &str) {
        self.text.push_str(s);
        self.ends.push(self.text.len());
    }

    /// Text `i` ("" past the end).
    pub fn get(&self, i: usize) -> &str {
        let Some(end) = self.ends.get(i) else {
            return "";
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..*end).unwrap_or("")
    }

    /// Moves `other`'s texts after these (numbered on from ours), leaving it empty with its
    /// room kept.
    pub fn append(&mut self, other: &mut Texts) {
        let offset = self.text.len();
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + offset));
        other.text.clear();
        other.ends.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::Texts;

    #[test]
    fn texts_keep_their_numbers_when_joined() {
        let mut a = Texts::default();
        a.push("Patient/1");
        a.push("");
        let mut b = Texts::default();
        b.reserve(2);
        b.push("urn:uuid:é");
        b.push("ServiceRequest/2");
        a.append(&mut b);
        assert_eq!(a.len(), 4);
        assert!(b.is_empty());
        let all: Vec<&str> = (0..5).map(|i| a.get(i)).collect();
        assert_eq!(all, ["Patient/1", "", "urn:uuid:é", "ServiceRequest/2", ""]);
        b.push("Condition/3");
        assert_eq!(b.get(0), "Condition/3");
    }
}
