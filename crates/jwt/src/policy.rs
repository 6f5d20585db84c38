//! What a CUSTOM_JWT payment manager requires of a token's claims (B33), and the checks.
//!
//! Messages say which check failed and never carry a claim's value from the token (only
//! names of claims and of the manager's own rules).
use serde_json::{Map, Value};

use crate::Denied;

/// The longest payment user id the data plane accepts (the model's `UserId`, max 120).
pub const MAX_SUBJECT_LEN: usize = 120;

/// A manager's `customJWTAuthorizer`, in domain terms. Empty lists are not checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    pub discovery_url: String,
    pub allowed_audience: Vec<String>,
    pub allowed_clients: Vec<String>,
    pub allowed_scopes: Vec<String>,
    pub custom_claims: Vec<ClaimRule>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimRule {
    pub name: String,
    pub value_type: ClaimType,
    pub operator: ClaimOperator,
    pub value: MatchValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimType {
    String,
    StringArray,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimOperator {
    Equals,
    Contains,
    ContainsAny,
}

impl ClaimOperator {
    fn name(self) -> &'static str {
        match self {
            ClaimOperator::Equals => "EQUALS",
            ClaimOperator::Contains => "CONTAINS",
            ClaimOperator::ContainsAny => "CONTAINS_ANY",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchValue {
    One(String),
    Many(Vec<String>),
}

/// Check the verified token's claims against the policy and return the payment user
/// (`sub`). `issuer` is the discovery document's `issuer`; `now` is Unix seconds.
pub fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    policy: &Policy,
    now: i64,
    leeway: i64,
) -> Result<String, Denied> {
    let time = |name: &str| -> Result<Option<i64>, Denied> {
        match claims.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| {
                    Denied::new(format!(
                        "The bearer token's {name} claim is not a number of seconds."
                    ))
                }),
            Some(_) => Err(Denied::new(format!(
                "The bearer token's {name} claim is not a number of seconds."
            ))),
        }
    };
    let exp = time("exp")?.ok_or_else(|| Denied::new("The bearer token has no exp claim."))?;
    if now > exp.saturating_add(leeway) {
        return Err(Denied::new("The bearer token has expired."));
    }
    if let Some(nbf) = time("nbf")?
        && now < nbf.saturating_sub(leeway)
    {
        return Err(Denied::new("The bearer token is not valid yet (nbf)."));
    }
    match claims.get("iss") {
        Some(Value::String(iss)) if iss == issuer => {}
        Some(_) => {
            return Err(Denied::new(
                "The bearer token's issuer (iss) is not the issuer named by the manager's discovery document.",
            ));
        }
        None => return Err(Denied::new("The bearer token has no issuer (iss).")),
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(Denied::new("The bearer token has no subject (sub).")),
    };
    if sub.chars().count() > MAX_SUBJECT_LEN {
        return Err(Denied::new(format!(
            "The bearer token's subject (sub) is longer than {MAX_SUBJECT_LEN} characters, the longest payment user id."
        )));
    }
    if !policy.allowed_audience.is_empty() {
        let aud = strings(claims.get("aud"));
        if !aud.iter().any(|a| policy.allowed_audience.contains(a)) {
            return Err(Denied::new(
                "The bearer token's audience (aud) is not allowed by the payment manager.",
            ));
        }
    }
    if !policy.allowed_clients.is_empty() {
        let client = ["client_id", "azp"]
            .iter()
            .filter_map(|k| claims.get(*k).and_then(Value::as_str))
            .any(|c| policy.allowed_clients.iter().any(|a| a == c));
        if !client {
            return Err(Denied::new(
                "The bearer token's client (client_id or azp) is not allowed by the payment manager.",
            ));
        }
    }
    if !policy.allowed_scopes.is_empty() {
        let mut scopes = Vec::new();
        for k in ["scope", "scp"] {
            match claims.get(k) {
                Some(Value::String(s)) => scopes.extend(s.split_whitespace().map(str::to_string)),
                other => scopes.extend(strings(other)),
            }
        }
        if !scopes.iter().any(|s| policy.allowed_scopes.contains(s)) {
            return Err(Denied::new(
                "The bearer token has none of the scopes (scope or scp) the payment manager allows.",
            ));
        }
    }
    for rule in &policy.custom_claims {
        check_rule(claims, rule)?;
    }
    Ok(sub)
}

/// A claim that is a string or an array of strings, as a list (other types: empty).
fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

impl ClaimRule {
    /// Whether the rule is one of the three meaningful combinations: EQUALS on a STRING
    /// claim with one value, CONTAINS on a STRING_ARRAY claim with one value,
    /// CONTAINS_ANY on a STRING_ARRAY claim with a list. Any other rule matches no token.
    pub fn is_well_formed(&self) -> bool {
        matches!(
            (self.value_type, self.operator, &self.value),
            (ClaimType::String, ClaimOperator::Equals, MatchValue::One(_))
                | (
                    ClaimType::StringArray,
                    ClaimOperator::Contains,
                    MatchValue::One(_)
                )
                | (
                    ClaimType::StringArray,
                    ClaimOperator::ContainsAny,
                    MatchValue::Many(_)
                )
        )
    }
}

/// What is wrong with a rule that [`ClaimRule::is_well_formed`] refuses.
pub const RULE_FORMS: &str = "EQUALS takes a STRING claim and matchValueString, CONTAINS a STRING_ARRAY claim and matchValueString, CONTAINS_ANY a STRING_ARRAY claim and matchValueStringList";

fn check_rule(claims: &Map<String, Value>, rule: &ClaimRule) -> Result<(), Denied> {
    let name = &rule.name;
    let op = rule.operator.name();
    let fail = || {
        Denied::new(format!(
            "The bearer token's claim '{name}' does not satisfy the payment manager's custom claim rule ({op})."
        ))
    };
    let claim = claims.get(name).ok_or_else(|| {
        Denied::new(format!(
            "The bearer token has no claim '{name}', which the payment manager's custom claim rule requires."
        ))
    })?;
    match (rule.value_type, rule.operator, &rule.value) {
        (ClaimType::String, ClaimOperator::Equals, MatchValue::One(want)) => match claim.as_str() {
            Some(have) if have == want => Ok(()),
            _ => Err(fail()),
        },
        (ClaimType::StringArray, op, value) if op != ClaimOperator::Equals => {
            let Value::Array(items) = claim else {
                return Err(fail());
            };
            let have: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
            if have.len() != items.len() {
                return Err(fail());
            }
            let wanted: &[String] = match (op, value) {
                (ClaimOperator::Contains, MatchValue::One(w)) => std::slice::from_ref(w),
                (ClaimOperator::ContainsAny, MatchValue::Many(ws)) => ws,
                _ => return Err(misconfigured(rule)),
            };
            if wanted.iter().any(|w| have.contains(&w.as_str())) {
                Ok(())
            } else {
                Err(fail())
            }
        }
        _ => Err(misconfigured(rule)),
    }
}

fn misconfigured(rule: &ClaimRule) -> Denied {
    Denied::new(format!(
        "The payment manager's custom claim rule for '{}' cannot match any token: {RULE_FORMS}.",
        rule.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISS: &str = "https://issuer.example.com";
    const NOW: i64 = 1_800_000_000;

    fn claims(v: Value) -> Map<String, Value> {
        let mut base = json!({"iss": ISS, "sub": "alice", "exp": NOW + 300});
        for (k, x) in v.as_object().unwrap() {
            if x.is_null() {
                base.as_object_mut().unwrap().remove(k);
            } else {
                base[k] = x.clone();
            }
        }
        base.as_object().unwrap().clone()
    }

    fn check(c: Value, p: &Policy) -> Result<String, String> {
        check_claims(&claims(c), ISS, p, NOW, 60).map_err(|d| d.message().to_string())
    }

    fn rule(name: &str, t: ClaimType, op: ClaimOperator, v: MatchValue) -> ClaimRule {
        ClaimRule {
            name: name.into(),
            value_type: t,
            operator: op,
            value: v,
        }
    }

    #[test]
    fn subject_is_the_user() {
        assert_eq!(check(json!({}), &Policy::default()).unwrap(), "alice");
        assert!(
            check(json!({"sub": null}), &Policy::default())
                .unwrap_err()
                .contains("sub")
        );
        assert!(
            check(json!({"sub": ""}), &Policy::default())
                .unwrap_err()
                .contains("sub")
        );
        assert!(
            check(json!({"sub": 7}), &Policy::default())
                .unwrap_err()
                .contains("sub")
        );
        let long = "x".repeat(121);
        assert!(
            check(json!({"sub": long}), &Policy::default())
                .unwrap_err()
                .contains("longer")
        );
    }

    #[test]
    fn times_with_leeway() {
        let p = Policy::default();
        assert!(check(json!({"exp": NOW - 30}), &p).is_ok(), "within leeway");
        assert!(
            check(json!({"exp": NOW - 61}), &p)
                .unwrap_err()
                .contains("expired")
        );
        assert!(
            check(json!({"exp": null}), &p)
                .unwrap_err()
                .contains("no exp")
        );
        assert!(
            check(json!({"exp": "soon"}), &p)
                .unwrap_err()
                .contains("exp claim is not")
        );
        assert!(check(json!({"nbf": NOW + 30}), &p).is_ok(), "within leeway");
        assert!(
            check(json!({"nbf": NOW + 61}), &p)
                .unwrap_err()
                .contains("not valid yet")
        );
        assert!(check(json!({"exp": i64::MAX, "nbf": i64::MIN}), &p).is_ok());
    }

    #[test]
    fn issuer_must_match_the_discovery_document() {
        let p = Policy::default();
        assert!(
            check(json!({"iss": "https://evil.example.com"}), &p)
                .unwrap_err()
                .contains("issuer")
        );
        assert!(
            check(json!({"iss": null}), &p)
                .unwrap_err()
                .contains("issuer")
        );
    }

    #[test]
    fn audience_string_or_array() {
        let p = Policy {
            allowed_audience: vec!["api".into(), "pay".into()],
            ..Policy::default()
        };
        assert!(check(json!({"aud": "pay"}), &p).is_ok());
        assert!(check(json!({"aud": ["x", "api"]}), &p).is_ok());
        let e = check(json!({"aud": ["x", "y-secret-value"]}), &p).unwrap_err();
        assert!(
            e.contains("audience") && !e.contains("y-secret-value"),
            "{e}"
        );
        assert!(check(json!({"aud": null}), &p).is_err());
        // not checked when the list is empty
        assert!(check(json!({"aud": "other"}), &Policy::default()).is_ok());
    }

    #[test]
    fn clients_from_client_id_or_azp() {
        let p = Policy {
            allowed_clients: vec!["c1".into()],
            ..Policy::default()
        };
        assert!(check(json!({"client_id": "c1"}), &p).is_ok());
        assert!(check(json!({"azp": "c1"}), &p).is_ok());
        assert!(
            check(json!({"client_id": "c2"}), &p)
                .unwrap_err()
                .contains("client")
        );
        assert!(check(json!({}), &p).unwrap_err().contains("client"));
    }

    #[test]
    fn scopes_from_scope_or_scp() {
        let p = Policy {
            allowed_scopes: vec!["payments/write".into()],
            ..Policy::default()
        };
        assert!(check(json!({"scope": "openid payments/write"}), &p).is_ok());
        assert!(check(json!({"scp": ["payments/write"]}), &p).is_ok());
        assert!(
            check(json!({"scope": "openid payments/read"}), &p)
                .unwrap_err()
                .contains("scopes")
        );
        assert!(check(json!({}), &p).is_err());
    }

    #[test]
    fn custom_claims() {
        use ClaimOperator::*;
        use ClaimType::*;
        let one = |s: &str| MatchValue::One(s.into());
        let many = |v: &[&str]| MatchValue::Many(v.iter().map(|s| s.to_string()).collect());
        let p = |r: ClaimRule| Policy {
            custom_claims: vec![r],
            ..Policy::default()
        };
        let eq = p(rule("tier", String, Equals, one("gold")));
        assert!(check(json!({"tier": "gold"}), &eq).is_ok());
        assert!(
            check(json!({"tier": "silver"}), &eq)
                .unwrap_err()
                .contains("'tier'")
        );
        assert!(check(json!({"tier": ["gold"]}), &eq).is_err());
        assert!(
            check(json!({}), &eq)
                .unwrap_err()
                .contains("no claim 'tier'")
        );

        let contains = p(rule("groups", StringArray, Contains, one("payers")));
        assert!(check(json!({"groups": ["a", "payers"]}), &contains).is_ok());
        assert!(check(json!({"groups": ["a"]}), &contains).is_err());
        assert!(check(json!({"groups": "payers"}), &contains).is_err());

        let any = p(rule(
            "roles",
            StringArray,
            ContainsAny,
            many(&["admin", "agent"]),
        ));
        assert!(check(json!({"roles": ["agent"]}), &any).is_ok());
        assert!(check(json!({"roles": ["viewer"]}), &any).is_err());
        assert!(check(json!({"roles": []}), &any).is_err());

        assert!(rule("x", String, Equals, one("a")).is_well_formed());
        assert!(!rule("x", String, Equals, many(&["a"])).is_well_formed());
        assert!(!rule("x", StringArray, Equals, one("a")).is_well_formed());
        let bad = p(rule("x", String, ContainsAny, many(&["a"])));
        assert!(
            check(json!({"x": "a"}), &bad)
                .unwrap_err()
                .contains("cannot match")
        );
        let bad = p(rule("x", StringArray, Contains, many(&["a"])));
        assert!(
            check(json!({"x": ["a"]}), &bad)
                .unwrap_err()
                .contains("cannot match")
        );
    }
}
