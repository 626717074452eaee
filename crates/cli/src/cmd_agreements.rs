//! `crest agreements`: data sharing agreements.

use crate::args::*;
use crate::common::*;
use anyhow::{anyhow, Result};

pub(crate) fn agreements(db: &str, action: AgreementsAction) -> Result<i32> {
    let mut store = crest_store::open(db)?;
    match action {
        AgreementsAction::Add {
            id,
            recipient,
            legal_basis,
            from,
            to,
            fields,
            opt_out_exempt,
        } => {
            use crest_core::governance::{Agreement, AgreementInput};
            let a = Agreement::parse(AgreementInput {
                id,
                recipient,
                legal_basis,
                valid_from: from,
                valid_to: to,
                fields: fields.map(|f| f.split(',').map(str::to_string).collect()),
                opt_out_exempt,
            })
            .map_err(|e| {
                let flag = match e.part {
                    "valid_from" => "from",
                    "valid_to" => "to",
                    "legal_basis" => "legal-basis",
                    other => other,
                };
                anyhow!("--{flag}: {e}")
            })?;
            store.put_agreement(&a)?;
            store.log(&crest_store::AccessEntry {
                detail: a.summary(),
                ..command_line_entry("", "agreement", &a.id)
            })?;
            println!("agreement recorded: {}", a.summary());
        }
        AgreementsAction::List => {
            for a in store.agreements()? {
                println!("{}", a.summary());
            }
        }
    }
    Ok(0)
}
