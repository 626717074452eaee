//! Users, sessions and the access log: what the web app keeps next to the episodes.

/// What a user may do (privacy.md "Access control").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Enters and sees the episodes of their programmes.
    ProgrammeStaff,
    /// Staff, plus the programme profile and uploads for their programmes.
    ProgrammeLead,
    /// Users and configuration; no patient data.
    Admin,
    /// The national store only: pseudonymised submissions, receipts and analyses.
    NationalAnalyst,
    /// Disclosure-controlled figures for the regions they plan services for.
    Commissioner,
    /// Approved extracts of their research projects and disclosure-controlled aggregates.
    Researcher,
}

impl Role {
    /// Every role, for help text and forms.
    pub const ALL: [Role; 6] = [
        Role::ProgrammeStaff,
        Role::ProgrammeLead,
        Role::Admin,
        Role::NationalAnalyst,
        Role::Commissioner,
        Role::Researcher,
    ];

    /// The code stored and typed on the command line.
    pub fn code(self) -> &'static str {
        match self {
            Role::ProgrammeStaff => "programme_staff",
            Role::ProgrammeLead => "programme_lead",
            Role::Admin => "admin",
            Role::NationalAnalyst => "national_analyst",
            Role::Commissioner => "commissioner",
            Role::Researcher => "researcher",
        }
    }

    /// Parses a role code.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == s.trim())
    }

    /// The role in words, for pages.
    pub fn label(self) -> &'static str {
        match self {
            Role::ProgrammeStaff => "Programme staff",
            Role::ProgrammeLead => "Programme lead",
            Role::Admin => "Administrator",
            Role::NationalAnalyst => "National analyst",
            Role::Commissioner => "Commissioner",
            Role::Researcher => "Researcher",
        }
    }

    /// Whether the role sees identifiable patient data of its programmes.
    pub fn sees_patients(self) -> bool {
        matches!(self, Role::ProgrammeStaff | Role::ProgrammeLead)
    }

    /// Whether the role only ever sees disclosure-controlled figures (privacy.md).
    pub fn restricted(self) -> bool {
        matches!(self, Role::Commissioner | Role::Researcher)
    }
}

/// A login.
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    /// Login name.
    pub username: String,
    /// Argon2id PHC string; never the password.
    pub password_hash: String,
    /// What the user may do.
    pub role: Role,
    /// Programme codes the user works for (empty for admins).
    pub programmes: Vec<String>,
    /// A disabled user cannot log in and their sessions end.
    pub disabled: bool,
    /// Their security-code secret (base32), empty when they have not set one up.
    pub totp_secret: String,
    /// The regions a commissioner plans for (empty for every other role).
    pub regions: Vec<String>,
}

/// A personal API token (its secret is shown once; the store keeps its SHA-256 only).
#[derive(Clone, Debug, PartialEq)]
pub struct UserToken {
    /// Short public id, for listing and revoking.
    pub id: String,
    /// Whose token: it acts with that user's role and programmes or regions, as they are now.
    pub username: String,
    /// What the user called it.
    pub label: String,
    /// When it was made (UTC, ISO 8601).
    pub created_at: String,
    /// When it stops working (UTC, ISO 8601).
    pub expires_at: String,
    /// When it was revoked.
    pub revoked_at: Option<String>,
}

impl UserToken {
    /// Whether it works at `now` (UTC, ISO 8601).
    pub fn live(&self, now: &str) -> bool {
        self.revoked_at.is_none() && now < self.expires_at.as_str()
    }
}

/// A server-side session; the cookie holds the token, the store only its SHA-256.
#[derive(Clone, Debug, PartialEq)]
pub struct Session {
    /// Hex SHA-256 of the token.
    pub token_hash: String,
    /// Whose session.
    pub username: String,
    /// The CSRF token every form of this session must carry.
    pub csrf: String,
    /// Unix seconds at login.
    pub created: i64,
    /// Unix seconds of the last request.
    pub seen: i64,
}

/// One access-log entry (who, role, programme, what, when, outcome).
#[derive(Clone, Debug, PartialEq, Default)]
pub struct AccessEntry {
    /// UTC time, ISO 8601.
    pub at: String,
    /// Login name (or the name tried, for a failed login).
    pub username: String,
    /// Role code, empty when unknown.
    pub role: String,
    /// Programme concerned, if any.
    pub programme: String,
    /// What was done: `login`, `view`, `change`, `create`, `import`, `export`, …
    pub action: String,
    /// What it was done to (an episode id, a file name), never a patient identifier.
    pub target: String,
    /// `ok`, `denied`, `failed`.
    pub outcome: String,
    /// For changes: the fields changed with old and new values.
    pub detail: String,
}

/// The current UTC time as ISO 8601 (`2025-01-31T09:05:00Z`), for access-log entries.
pub fn utc_now() -> String {
    let secs = crest_core::date::unix_now();
    let day = crest_core::Date::from_days((secs / 86_400) as i32);
    let s = secs % 86_400;
    format!("{day}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

/// What the episode list is filtered by.
#[derive(Clone, Debug, Default)]
pub struct EpisodeQuery {
    /// Part of an NHS number, family name, given name, hospital number or episode id.
    pub text: String,
    /// Status code.
    pub status: String,
    /// Initiating event (pathway) code.
    pub pathway: String,
    /// Referred on or after.
    pub from: Option<crest_core::Date>,
    /// Referred on or before.
    pub to: Option<crest_core::Date>,
    /// At most this many.
    pub limit: usize,
    /// Skip this many first (for the pages of a long list).
    pub offset: usize,
    /// In which order.
    pub sort: EpisodeSort,
}

impl EpisodeQuery {
    /// Every episode, most recently referred first.
    pub fn everything() -> EpisodeQuery {
        EpisodeQuery {
            limit: usize::MAX,
            ..Default::default()
        }
    }
}

/// The orders the episode list can be sorted in.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum EpisodeSort {
    /// Most recently referred first.
    #[default]
    ReferralNewest,
    /// Earliest referred first.
    ReferralOldest,
    /// By last name, then first name.
    Name,
    /// By episode id.
    Episode,
    /// By status, then most recently referred.
    Status,
}

impl EpisodeSort {
    /// Every order with its code (in addresses and forms) and its words.
    pub const ALL: [(EpisodeSort, &'static str, &'static str); 5] = [
        (
            EpisodeSort::ReferralNewest,
            "newest",
            "Referral date, newest first",
        ),
        (
            EpisodeSort::ReferralOldest,
            "oldest",
            "Referral date, oldest first",
        ),
        (EpisodeSort::Name, "name", "Last name"),
        (EpisodeSort::Episode, "episode", "Episode ID"),
        (EpisodeSort::Status, "status", "Status"),
    ];

    /// The order named by `code`; the default for anything else.
    pub fn parse(code: &str) -> EpisodeSort {
        EpisodeSort::ALL
            .iter()
            .find(|(_, c, _)| *c == code)
            .map_or(EpisodeSort::default(), |(s, _, _)| *s)
    }

    /// Its code.
    pub fn code(self) -> &'static str {
        EpisodeSort::ALL
            .iter()
            .find(|(s, _, _)| *s == self)
            .map_or("newest", |(_, c, _)| c)
    }

    /// The SQL `ORDER BY` list (from this fixed set only, never from input).
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            EpisodeSort::ReferralNewest => "referral_date DESC, episode_id",
            EpisodeSort::ReferralOldest => "referral_date, episode_id",
            EpisodeSort::Name => "lower(family_name), lower(given_name), episode_id",
            EpisodeSort::Episode => "episode_id",
            EpisodeSort::Status => "status, referral_date DESC, episode_id",
        }
    }
}

/// SQL shared by both back ends, with `?N` placeholders (rewritten to `$N` for PostgreSQL).
pub(crate) mod sql {
    pub const PUT_USER: &str = "INSERT INTO users (username, password_hash, role, programmes, disabled, totp_secret, regions) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (username) DO UPDATE SET password_hash = excluded.password_hash, \
        role = excluded.role, programmes = excluded.programmes, disabled = excluded.disabled, \
        totp_secret = excluded.totp_secret, regions = excluded.regions";
    pub const USER: &str =
        "SELECT username, password_hash, role, programmes, disabled, totp_secret, regions \
        FROM users WHERE username = ?1";
    pub const USERS: &str =
        "SELECT username, password_hash, role, programmes, disabled, totp_secret, regions \
        FROM users ORDER BY username";
    pub const SETTING: &str = "SELECT value FROM settings WHERE name = ?1";
    /// Keeps a programme's newest `?2` uploads waiting for confirmation and drops the rest.
    pub const KEEP_NEWEST_UPLOADS: &str = "DELETE FROM pending_uploads WHERE programme_code = ?1 AND token NOT IN \
        (SELECT token FROM pending_uploads WHERE programme_code = ?1 ORDER BY created DESC, token DESC LIMIT ?2)";
    pub const PUT_USER_TOKEN: &str = "INSERT INTO user_tokens (token_hash, id, username, label, created_at, expires_at, revoked_at) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)";
    pub const USER_TOKEN: &str = "SELECT id, username, label, created_at, expires_at, revoked_at FROM user_tokens WHERE token_hash = ?1";
    pub const USER_TOKENS: &str =
        "SELECT id, username, label, created_at, expires_at, revoked_at FROM user_tokens \
        WHERE username = ?1 ORDER BY created_at DESC, id";
    pub const REVOKE_USER_TOKEN: &str =
        "UPDATE user_tokens SET revoked_at = ?3 WHERE username = ?1 AND id = ?2 AND revoked_at IS NULL";
    pub const PUT_SETTING: &str = "INSERT INTO settings (name, value) VALUES (?1, ?2) \
        ON CONFLICT (name) DO UPDATE SET value = excluded.value";
    pub const PUT_SESSION: &str =
        "INSERT INTO sessions (token_hash, username, csrf, created, seen) VALUES (?1, ?2, ?3, ?4, ?5)";
    pub const SESSION: &str =
        "SELECT token_hash, username, csrf, created, seen FROM sessions WHERE token_hash = ?1";
    pub const TOUCH_SESSION: &str = "UPDATE sessions SET seen = ?2 WHERE token_hash = ?1";
    pub const DROP_SESSION: &str = "DELETE FROM sessions WHERE token_hash = ?1";
    pub const DROP_USER_SESSIONS: &str = "DELETE FROM sessions WHERE username = ?1";

    pub const PUT_AGREEMENT: &str = "INSERT INTO agreements (id, recipient, legal_basis, fields, opt_out_exempt, valid_from, valid_to) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET recipient = excluded.recipient, \
        legal_basis = excluded.legal_basis, fields = excluded.fields, opt_out_exempt = excluded.opt_out_exempt, \
        valid_from = excluded.valid_from, valid_to = excluded.valid_to";
    pub const AGREEMENTS: &str =
        "SELECT id, recipient, legal_basis, fields, opt_out_exempt, valid_from, valid_to \
        FROM agreements ORDER BY valid_from, id";
    pub const ADD_SERVICE_CHANGE: &str =
        "INSERT INTO service_changes (scope, code, changed_on, text, recorded_by, recorded_at) \
        VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id";
    pub const SERVICE_CHANGES: &str =
        "SELECT id, scope, code, changed_on, text, recorded_by, recorded_at \
        FROM service_changes ORDER BY changed_on, id";
    pub const SENT: &str =
        "SELECT episode_id FROM sent_episodes WHERE programme_code = ?1 ORDER BY episode_id";
    pub const ADD_SENT: &str = "INSERT INTO sent_episodes (programme_code, episode_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING";
    pub const DROP_SENT: &str =
        "DELETE FROM sent_episodes WHERE programme_code = ?1 AND episode_id = ?2";
}

/// Agreement columns as stored (all text, the same on both back ends).
pub(crate) fn agreement_row(a: &crest_core::governance::Agreement) -> [String; 7] {
    [
        a.id.clone(),
        a.recipient.clone(),
        a.legal_basis.clone(),
        a.fields.as_ref().map_or("*".to_string(), |f| f.join(";")),
        if a.opt_out_exempt {
            "exempt"
        } else {
            "applies"
        }
        .to_string(),
        a.valid_from.to_string(),
        a.valid_to.to_string(),
    ]
}

/// An agreement from its stored columns.
pub(crate) fn agreement_of(c: [String; 7]) -> crate::Result<crest_core::governance::Agreement> {
    let date = |s: &str| {
        crest_core::Date::parse_iso(s)
            .map_err(|e| crate::StoreError::Corrupt(format!("agreement date: {}", e.0)))
    };
    let [id, recipient, legal_basis, fields, opt_out, from, to] = c;
    Ok(crest_core::governance::Agreement {
        id,
        recipient,
        legal_basis,
        fields: (fields != "*").then(|| {
            fields
                .split(';')
                .filter(|f| !f.is_empty())
                .map(str::to_string)
                .collect()
        }),
        opt_out_exempt: opt_out == "exempt",
        valid_from: date(&from)?,
        valid_to: date(&to)?,
    })
}

/// Builds a user from its stored columns.
pub(crate) fn user_of(
    username: String,
    password_hash: String,
    role: &str,
    programmes: &str,
    disabled: bool,
    totp_secret: String,
    regions: &str,
) -> crate::Result<User> {
    Ok(User {
        username,
        password_hash,
        role: Role::parse(role)
            .ok_or_else(|| crate::StoreError::Corrupt(format!("unknown role {role}")))?,
        programmes: programmes
            .split(';')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
        disabled,
        totp_secret,
        regions: regions
            .split(';')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

/// The WHERE clause and text parameters of an episode query (placeholders from `?2`; `?1` is
/// the programme). Dates are ISO text on both back ends, so the same comparisons work.
pub(crate) fn episode_filter(q: &EpisodeQuery) -> (String, Vec<String>) {
    let mut clauses = vec!["programme_code = ?1".to_string()];
    let mut params = Vec::new();
    let mut add = |clause: &str, value: String| {
        params.push(value);
        clauses.push(clause.replace('#', &format!("?{}", params.len() + 1)));
    };
    let text = q.text.trim();
    // NHS numbers are often typed with spaces or dashes: 943 476 5919, 943-476-5919.
    let words: Vec<String> = if text
        .chars()
        .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
        && text.chars().any(|c| c.is_ascii_digit())
    {
        vec![text.chars().filter(char::is_ascii_digit).collect()]
    } else {
        // A full name ("Arun Dummer", "Dummer, Arun") finds the episode when every word
        // matches part of one of its names or ids.
        text.split(|c: char| c.is_whitespace() || c == ',')
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect()
    };
    for word in words {
        add(
            "(nhs_number LIKE # OR lower(family_name) LIKE lower(#) OR lower(given_name) LIKE lower(#) \
             OR local_patient_id LIKE # OR episode_id LIKE #)",
            format!("%{}%", word.replace(['%', '_'], "")),
        );
    }
    if !q.status.is_empty() {
        add("status = #", q.status.clone());
    }
    if !q.pathway.is_empty() {
        add("initiating_event = #", q.pathway.clone());
    }
    if let Some(d) = q.from {
        add("referral_date >= #", d.to_string());
    }
    if let Some(d) = q.to {
        add("referral_date <= #", d.to_string());
    }
    (clauses.join(" AND "), params)
}
