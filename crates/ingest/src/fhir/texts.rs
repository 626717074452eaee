//! Many short texts kept end to end in one string: a FHIR import holds close to a million
//! references, and a score of crest's own fields for each episode of care; one `String` each
//! cost three times their bytes (and as many allocations).

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

/// crest's own fields of an episode of care, kept as one text (a hundred thousand episodes
/// with a score of fields each made this the largest of the facts when each value was a
/// string of its own).
#[derive(Debug, Default)]
pub struct OwnFields {
    text: String,
    /// Each field and where its value ends in `text`.
    ends: Vec<(crest_core::Col, u32)>,
}

impl OwnFields {
    pub(crate) fn new(fields: &[(crest_core::Col, String)]) -> OwnFields {
        let mut own = OwnFields {
            text: String::with_capacity(fields.iter().map(|(_, v)| v.len()).sum()),
            ends: Vec::with_capacity(fields.len()),
        };
        for (field, value) in fields {
            own.text.push_str(value);
            own.ends
                .push((*field, u32::try_from(own.text.len()).unwrap_or(u32::MAX)));
        }
        own
    }

    /// Each field and its value.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let starts = std::iter::once(0).chain(self.ends.iter().map(|(_, e)| *e));
        self.ends.iter().zip(starts).map(|((f, end), start)| {
            (
                f.name(),
                self.text.get(start as usize..*end as usize).unwrap_or(""),
            )
        })
    }

    /// The value of a field.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.iter().find(|(f, _)| *f == field).map(|(_, v)| v)
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
