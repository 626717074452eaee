//! Data sharing agreements (privacy.md, "Governance"): who may receive national submissions,
//! on what legal basis, which fields, whether the National Data Opt-out applies, and when.

use crate::{Date, Tier, FIELDS};

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

impl Agreement {
    /// Checks the agreement itself: dates in order, approved fields known and national.
    pub fn check(&self) -> Result<(), String> {
        if self.id.trim().is_empty() || self.recipient.trim().is_empty() {
            return Err("an agreement needs an id and a recipient".into());
        }
        if self.legal_basis.trim().is_empty() {
            return Err(
                "an agreement needs its legal basis reference (e.g. the CAG approval)".into(),
            );
        }
        if self.valid_to < self.valid_from {
            return Err(format!(
                "valid to ({}) is before valid from ({})",
                self.valid_to, self.valid_from
            ));
        }
        for name in self.fields.iter().flatten() {
            match FIELDS.iter().find(|f| f.name == name) {
                None => return Err(format!("'{name}' is not a dataset field")),
                Some(f) if f.tier == Tier::Local => {
                    return Err(format!(
                        "'{name}' is tier L (local only) and can never be approved to leave"
                    ))
                }
                Some(_) => {}
            }
        }
        Ok(())
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
