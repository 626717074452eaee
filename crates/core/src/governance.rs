//! Data sharing agreements (privacy.md, "Governance"): who may receive national submissions,
//! on what legal basis, which fields, whether the National Data Opt-out applies, and when.

use crate::{Col, Date, Tier, FIELDS};

/// One data sharing agreement.
#[derive(Clone, Debug, PartialEq)]
pub struct Agreement {
    /// Short id, e.g. `ncpcr-2025`.
    pub id: String,
    /// Who receives the data, e.g. the national audit.
    pub recipient: String,
    /// Legal basis reference, e.g. the section 251 / CAG approval.
    pub legal_basis: String,
    /// Approved fields (tier N or D); `None` approves every national field.
    pub fields: Option<Vec<String>>,
    /// The National Data Opt-out does not apply (an exemption is recorded).
    pub opt_out_exempt: bool,
    /// First day of validity.
    pub valid_from: Date,
    /// Last day of validity.
    pub valid_to: Date,
}

/// An agreement as an administrator typed it (command line or web form), before checking.
#[derive(Clone, Debug, Default)]
pub struct AgreementInput {
    /// Short id.
    pub id: String,
    /// Recipient.
    pub recipient: String,
    /// Legal basis reference.
    pub legal_basis: String,
    /// First day in force, `YYYY-MM-DD` or `DD/MM/YYYY`.
    pub valid_from: String,
    /// Last day in force.
    pub valid_to: String,
    /// Approved field names; `None` approves every national field.
    pub fields: Option<Vec<String>>,
    /// The National Data Opt-out does not apply.
    pub opt_out_exempt: bool,
}

/// Why an agreement cannot be recorded, and which of its parts is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgreementError {
    /// The part at fault: `id`, `recipient`, `legal_basis`, `valid_from`, `valid_to` or `fields`.
    pub part: &'static str,
    /// What is wrong, naming the value.
    pub message: String,
}

impl std::fmt::Display for AgreementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for AgreementError {}

fn wrong(part: &'static str, message: String) -> AgreementError {
    AgreementError { part, message }
}

impl Agreement {
    /// Reads and checks a typed agreement: the one way an agreement is made, from the command
    /// line and from the administrators' page alike.
    pub fn parse(input: AgreementInput) -> Result<Agreement, AgreementError> {
        let day = |s: &str, part: &'static str, what: &str| {
            Date::parse(s.trim()).map_err(|e| wrong(part, format!("{what}: {e}")))
        };
        let a = Agreement {
            id: input.id.trim().to_string(),
            recipient: input.recipient.trim().to_string(),
            legal_basis: input.legal_basis.trim().to_string(),
            valid_from: day(&input.valid_from, "valid_from", "valid from")?,
            valid_to: day(&input.valid_to, "valid_to", "valid to")?,
            fields: input.fields.map(|f| {
                f.iter()
                    .map(|x| x.trim().to_string())
                    .filter(|x| !x.is_empty())
                    .collect()
            }),
            opt_out_exempt: input.opt_out_exempt,
        };
        a.check()?;
        Ok(a)
    }

    /// Checks the agreement itself: dates in order, approved fields known and national, and
    /// every field the national store requires approved (or no episode could be received).
    pub fn check(&self) -> Result<(), AgreementError> {
        if self.id.trim().is_empty() {
            return Err(wrong(
                "id",
                "an agreement needs a short id, e.g. ncpcr-2025".into(),
            ));
        }
        if !self
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(wrong(
                "id",
                format!(
                    "id '{}' may hold only letters, digits, '-', '_' and '.'",
                    self.id
                ),
            ));
        }
        if self.recipient.trim().is_empty() {
            return Err(wrong(
                "recipient",
                "an agreement needs its recipient, e.g. the national audit".into(),
            ));
        }
        if self.legal_basis.trim().is_empty() {
            return Err(wrong(
                "legal_basis",
                "an agreement needs its legal basis reference (e.g. the CAG approval)".into(),
            ));
        }
        if self.valid_to < self.valid_from {
            return Err(wrong(
                "valid_to",
                format!(
                    "valid to ({}) is before valid from ({})",
                    self.valid_to, self.valid_from
                ),
            ));
        }
        if let Some(fields) = &self.fields {
            for name in fields {
                match FIELDS.iter().find(|f| f.name == name) {
                    None => {
                        return Err(wrong("fields", format!("'{name}' is not a dataset field")))
                    }
                    Some(f) if f.tier == Tier::Local => {
                        return Err(wrong(
                            "fields",
                            format!(
                            "'{name}' is tier L (local only) and can never be approved to leave"
                        ),
                        ))
                    }
                    Some(_) => {}
                }
            }
            let missing: Vec<&str> = FIELDS
                .iter()
                .filter(|f| f.required && f.tier != Tier::Local && f.col != Col::ProgrammeCode)
                .filter(|f| !fields.iter().any(|n| n == f.name))
                .map(|f| f.name)
                .collect();
            if !missing.is_empty() {
                return Err(wrong(
                    "fields",
                    format!(
                        "the national store needs {} on every episode; approve {} too",
                        missing.join(", "),
                        if missing.len() == 1 { "it" } else { "them" }
                    ),
                ));
            }
        }
        Ok(())
    }

    /// One line saying the whole agreement, for lists and the access log.
    pub fn summary(&self) -> String {
        format!(
            "{}: {} to {}; recipient {}; legal basis {}; National Data Opt-out {}; fields: {}",
            self.id,
            self.valid_from,
            self.valid_to,
            self.recipient,
            self.legal_basis,
            if self.opt_out_exempt {
                "exempt"
            } else {
                "applies"
            },
            self.fields
                .as_ref()
                .map_or("every national field".into(), |f| f.join(", "))
        )
    }

    /// Whether the agreement is in force on `day`.
    pub fn in_force(&self, day: Date) -> bool {
        self.valid_from <= day && day <= self.valid_to
    }

    /// Whether a national field may leave under this agreement.
    pub fn allows(&self, field: &str) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|f| f.iter().any(|n| n == field))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input() -> AgreementInput {
        AgreementInput {
            id: "ncpcr-2025".into(),
            recipient: "National audit".into(),
            legal_basis: "CAG 99/CAG/0001".into(),
            valid_from: "01/04/2025".into(),
            valid_to: "2026-03-31".into(),
            fields: None,
            opt_out_exempt: false,
        }
    }

    fn fields(names: &str) -> Option<Vec<String>> {
        Some(names.split(',').map(str::to_string).collect())
    }

    const REQUIRED: &str = "sex,initiating_event,treatment,event_date,referral_date,status";

    #[test]
    fn a_typed_agreement_is_read_with_either_date_form() {
        let a = Agreement::parse(input()).unwrap();
        assert_eq!(a.valid_from.to_string(), "2025-04-01");
        assert!(a.in_force(Date::parse_iso("2026-03-31").unwrap()));
        assert!(!a.in_force(Date::parse_iso("2026-04-01").unwrap()));
        assert!(
            a.allows("a1_hads_anxiety"),
            "no list approves every national field"
        );
    }

    #[test]
    fn each_fault_names_its_part_and_value() {
        let fault = |f: &dyn Fn(&mut AgreementInput)| {
            let mut i = input();
            f(&mut i);
            Agreement::parse(i).unwrap_err()
        };
        let e = fault(&|i| i.valid_from = "31/02/2025".into());
        assert_eq!(e.part, "valid_from");
        assert!(e.message.contains("'31/02/2025'"), "{e}");
        let e = fault(&|i| i.valid_to = "2025-03-31".into());
        assert_eq!(e.part, "valid_to");
        assert!(e.message.contains("before valid from"), "{e}");
        assert_eq!(fault(&|i| i.id = " ".into()).part, "id");
        assert_eq!(fault(&|i| i.id = "a b".into()).part, "id");
        assert_eq!(fault(&|i| i.recipient = String::new()).part, "recipient");
        assert_eq!(
            fault(&|i| i.legal_basis = String::new()).part,
            "legal_basis"
        );
        let e = fault(&|i| i.fields = fields(&format!("{REQUIRED},nhs_number")));
        assert_eq!(e.part, "fields");
        assert!(e.message.contains("'nhs_number' is tier L"), "{e}");
        let e = fault(&|i| i.fields = fields(&format!("{REQUIRED},shoe_size")));
        assert!(
            e.message.contains("'shoe_size' is not a dataset field"),
            "{e}"
        );
        let e = fault(&|i| i.fields = fields("sex,treatment,a1_bmi"));
        assert_eq!(e.part, "fields");
        assert!(
            e.message
                .contains("initiating_event, event_date, referral_date, status"),
            "{e}"
        );
    }

    #[test]
    fn an_approved_list_allows_only_its_fields() {
        let mut i = input();
        i.fields = fields(&format!("{REQUIRED}, a1_bmi ,"));
        let a = Agreement::parse(i).unwrap();
        assert!(a.allows("a1_bmi") && a.allows("sex"));
        assert!(!a.allows("a2_bmi") && !a.allows("ethnicity"));
    }
}
