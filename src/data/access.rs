//! Access rules and the one function that checks a caller against them.

use serde::{Deserialize, Serialize};

use super::catalog::Table;
use crate::error::ApiError;
use crate::limits::MAX_ROLE_NAME_BYTES;

/// Who is making a request.
#[derive(Debug, Clone)]
pub enum Caller {
    Anonymous,
    /// Holder of the admin secret: bypasses every rule.
    Admin,
    User(Principal),
}

/// A signed-in user, as established from an access token or an API key.
#[derive(Debug, Clone, Default)]
pub struct Principal {
    pub id: String,
    pub email: String,
    pub roles: Vec<String>,
    /// The session of an access token (`None` for API keys).
    pub session_id: Option<String>,
    /// The API key used (`None` for access tokens).
    pub api_key_id: Option<String>,
    /// Set on tokens an admin issued to act as this user.
    pub impersonated: bool,
    /// When the session ends (ms since the epoch); `None` for API keys. An impersonation's
    /// session ends with its one access token.
    pub session_ends_ms: Option<i64>,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        matches!(self, Caller::Admin)
    }

    /// The id stored as `_owner_id` on records this caller creates.
    pub fn user_id(&self) -> Option<&str> {
        match self {
            Caller::User(p) => Some(&p.id),
            _ => None,
        }
    }
}

/// One access rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    Public,
    Authenticated,
    /// The caller is the record's `_owner_id`.
    Owner,
    Disabled,
    /// The caller's roles include this one.
    Role(String),
}

/// The rules of one collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    pub read: Rule,
    pub create: Rule,
    pub update: Rule,
    pub delete: Rule,
}

impl Default for Rules {
    fn default() -> Self {
        Rules { read: Rule::Public, create: Rule::Authenticated, update: Rule::Owner, delete: Rule::Owner }
    }
}

/// A partial change of rules, as `PATCH /admin/collections/:name` takes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesPatch {
    pub read: Option<Rule>,
    pub create: Option<Rule>,
    pub update: Option<Rule>,
    pub delete: Option<Rule>,
}

impl RulesPatch {
    /// 400 for a `{"role": …}` no user could hold: user roles are trimmed names of at most
    /// [`MAX_ROLE_NAME_BYTES`]. (Checked on the way in only: rules stored before still load.)
    pub fn check(&self) -> Result<(), ApiError> {
        for (action, rule) in
            [("read", &self.read), ("create", &self.create), ("update", &self.update), ("delete", &self.delete)]
        {
            if let Some(Rule::Role(role)) = rule
                && (role.len() > MAX_ROLE_NAME_BYTES || role.trim() != role)
            {
                return Err(ApiError::bad_field(
                    "rules",
                    format!(
                        "the {action} rule's role must be a name of 1 to {MAX_ROLE_NAME_BYTES} bytes without surrounding spaces (MAX_ROLE_NAME_BYTES)"
                    ),
                ));
            }
        }
        Ok(())
    }
}

impl Rules {
    pub fn apply(&mut self, patch: RulesPatch) {
        let RulesPatch { read, create, update, delete } = patch;
        if let Some(r) = read {
            self.read = r;
        }
        if let Some(r) = create {
            self.create = r;
        }
        if let Some(r) = update {
            self.update = r;
        }
        if let Some(r) = delete {
            self.delete = r;
        }
    }
}

/// Which records an allowed caller may act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Only records whose `_owner_id` is this user.
    OwnedBy(String),
}

impl Scope {
    /// The records in both scopes (of one caller: two owners' scopes never meet).
    pub fn narrowed_to(self, other: Scope) -> Scope {
        match (self, other) {
            (Scope::All, scope) | (scope, Scope::All) => scope,
            (owned, Scope::OwnedBy(_)) => owned,
        }
    }
}

/// The one access check: may `caller` act under `rule`, and on which records? Anonymous
/// callers that are refused get 401 (even under `disabled`: the admin's credentials would
/// pass), signed-in ones 403.
pub fn check(rule: &Rule, caller: &Caller) -> Result<Scope, ApiError> {
    match (rule, caller) {
        (_, Caller::Admin) | (Rule::Public, _) => Ok(Scope::All),
        (_, Caller::Anonymous) => Err(ApiError::Unauthorized("authentication required".into())),
        (Rule::Disabled, _) => Err(ApiError::Forbidden("this action is disabled for this collection".into())),
        (Rule::Authenticated, Caller::User(_)) => Ok(Scope::All),
        (Rule::Owner, Caller::User(p)) => Ok(Scope::OwnedBy(p.id.clone())),
        (Rule::Role(role), Caller::User(p)) => {
            if p.roles.iter().any(|r| r == role) {
                Ok(Scope::All)
            } else {
                Err(ApiError::Forbidden(format!("the '{role}' role is required")))
            }
        }
    }
}

/// The access check for a table: [`check`], plus the rule that `owner` on a table without an
/// `_owner_id` column (one made with plain SQL) admits only the admin. What every read and
/// write asks.
pub fn scope(table: &Table, rule: &Rule, caller: &Caller) -> Result<Scope, ApiError> {
    let scope = check(rule, caller)?;
    if matches!(scope, Scope::OwnedBy(_)) && table.column("_owner_id").is_none() {
        return Err(ApiError::Forbidden(format!(
            "'{}' has no _owner_id column: its 'owner' rule admits only the admin",
            table.name
        )));
    }
    Ok(scope)
}

/// The access check for changing or deleting records under `rule`: [`scope`], narrowed to the
/// records the caller may also read. A record the caller may not read is not found, whatever
/// the other rules allow, and no answer shows it (as row security does in PostgreSQL).
pub fn write_scope(table: &Table, rule: &Rule, caller: &Caller) -> Result<Scope, ApiError> {
    let read = scope(table, &table.access_rules().read, caller)?;
    Ok(scope(table, rule, caller)?.narrowed_to(read))
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Rule::Public => s.serialize_str("public"),
            Rule::Authenticated => s.serialize_str("authenticated"),
            Rule::Owner => s.serialize_str("owner"),
            Rule::Disabled => s.serialize_str("disabled"),
            Rule::Role(role) => {
                use serde::ser::SerializeMap;
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("role", role)?;
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// `{"role": "name"}` and nothing else: a misspelt condition beside it would be
        /// dropped silently, leaving a looser rule than the one written.
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct RoleRule {
            role: String,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Keyword(String),
            Role(RoleRule),
        }
        let invalid = || {
            serde::de::Error::custom(
                "a rule is \"public\", \"authenticated\", \"owner\", \"disabled\" or {\"role\": \"name\"}",
            )
        };
        match Raw::deserialize(d).map_err(|_| invalid())? {
            Raw::Keyword(k) => match k.as_str() {
                "public" => Ok(Rule::Public),
                "authenticated" => Ok(Rule::Authenticated),
                "owner" => Ok(Rule::Owner),
                "disabled" => Ok(Rule::Disabled),
                _ => Err(invalid()),
            },
            Raw::Role(RoleRule { role }) if !role.trim().is_empty() => Ok(Rule::Role(role)),
            Raw::Role(_) => Err(invalid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(roles: &[&str]) -> Caller {
        Caller::User(Principal {
            id: "u1".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Principal::default()
        })
    }

    #[test]
    fn admin_bypasses_every_rule() {
        for rule in [Rule::Public, Rule::Authenticated, Rule::Owner, Rule::Disabled, Rule::Role("x".into())] {
            assert_eq!(check(&rule, &Caller::Admin).unwrap(), Scope::All);
        }
    }

    #[test]
    fn anonymous_gets_401_and_users_403() {
        assert_eq!(check(&Rule::Public, &Caller::Anonymous).unwrap(), Scope::All);
        assert_eq!(check(&Rule::Authenticated, &Caller::Anonymous).unwrap_err().status(), 401);
        assert_eq!(check(&Rule::Owner, &Caller::Anonymous).unwrap_err().status(), 401);
        assert_eq!(check(&Rule::Disabled, &Caller::Anonymous).unwrap_err().status(), 401);
        assert_eq!(check(&Rule::Disabled, &user(&["editor"])).unwrap_err().status(), 403);
        assert_eq!(check(&Rule::Role("editor".into()), &user(&[])).unwrap_err().status(), 403);
        assert_eq!(check(&Rule::Role("editor".into()), &user(&["editor"])).unwrap(), Scope::All);
        assert_eq!(check(&Rule::Owner, &user(&[])).unwrap(), Scope::OwnedBy("u1".into()));
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rules = Rules { read: Rule::Public, create: Rule::Role("editor".into()), ..Rules::default() };
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(serde_json::from_str::<Rules>(&json).unwrap(), rules);
        assert!(serde_json::from_str::<Rule>("\"everyone\"").is_err());
        assert!(serde_json::from_str::<Rule>("{\"role\": \"\"}").is_err());
        assert!(serde_json::from_str::<Rule>("{\"role\": \"x\", \"y\": 1}").is_err());
        assert!(serde_json::from_str::<Rule>("42").is_err());
    }
}
