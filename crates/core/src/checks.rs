//! Identifier checks: NHS number Modulus 11 and UK postcodes.

/// A valid NHS number: ten digits with a correct Modulus 11 check digit. The only thing a
/// patient's pseudonym is ever computed from.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NhsNumber(String);

impl NhsNumber {
    /// Checks and normalises (spaces and dashes removed) an NHS number as written.
    pub fn parse(raw: &str) -> Result<NhsNumber, crate::Invalid> {
        nhs_number(raw).map(NhsNumber)
    }

    /// The ten digits.
    pub fn digits(&self) -> &str {
        &self.0
    }
}

/// Normalises and checks an NHS number: spaces and dashes stripped, ten digits, a valid
/// Modulus 11 check digit (a check value of 10 is invalid) and not all one digit.
pub fn nhs_number(raw: &str) -> Result<String, crate::Invalid> {
    let digits: String = raw.chars().filter(|c| *c != ' ' && *c != '-').collect();
    if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("an NHS number has exactly 10 digits".into());
    }
    let d: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
    if d.iter().all(|x| *x == d[0]) {
        return Err("an NHS number cannot be the same digit ten times".into());
    }
    if nhs_check_digit(&d[..9]) != Some(d[9]) {
        return Err("this is not a valid NHS number (the check digit does not match)".into());
    }
    Ok(digits)
}

/// The Modulus 11 check digit for the first nine digits, or `None` when the check value is 10
/// (such a number is never issued).
pub fn nhs_check_digit(first9: &[u32]) -> Option<u32> {
    let sum: u32 = first9
        .iter()
        .enumerate()
        .map(|(i, x)| x * (10 - i as u32))
        .sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

/// Normalises a UK postcode to upper case with one space before the inward code (`AA9A 9AA`),
/// or explains why it is not one.
pub fn postcode(raw: &str) -> Result<String, crate::Invalid> {
    let compact: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    let bad = || Err(crate::Invalid::from("not a UK postcode (e.g. SE1 7EH)"));
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return bad();
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let i = inward.as_bytes();
    if !(i[0].is_ascii_digit() && i[1].is_ascii_alphabetic() && i[2].is_ascii_alphabetic()) {
        return bad();
    }
    // Outward code shapes: A9, A99, AA9, AA99, A9A, AA9A.
    let shape: String = outward
        .bytes()
        .map(|b| {
            if b.is_ascii_digit() {
                '9'
            } else if b.is_ascii_alphabetic() {
                'A'
            } else {
                '?'
            }
        })
        .collect();
    if !matches!(
        shape.as_str(),
        "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A"
    ) {
        return bad();
    }
    Ok(format!("{outward} {inward}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers() {
        assert_eq!(nhs_number("943 476 5919").as_deref(), Ok("9434765919"));
        assert_eq!(nhs_number("943-476-5919").as_deref(), Ok("9434765919"));
        assert!(nhs_number("9434765918").is_err());
        assert!(nhs_number("1111111111").is_err());
        assert!(nhs_number("943476591").is_err());
        assert!(nhs_number("94347659AB").is_err());
        // 9 digits whose check value is 10 never yield a valid number.
        assert_eq!(nhs_check_digit(&[0, 0, 0, 0, 0, 0, 0, 0, 6]), None);
    }

    #[test]
    fn postcodes() {
        assert_eq!(postcode("se17eh").as_deref(), Ok("SE1 7EH"));
        assert_eq!(postcode(" SW1A 1AA ").as_deref(), Ok("SW1A 1AA"));
        assert_eq!(postcode("M1 1AE").as_deref(), Ok("M1 1AE"));
        assert_eq!(postcode("B33 8TH").as_deref(), Ok("B33 8TH"));
        assert!(postcode("12345").is_err());
        assert!(postcode("SE1 77H").is_err());
        assert!(postcode("").is_err());
    }
}
