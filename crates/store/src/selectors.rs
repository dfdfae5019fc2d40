//! Advanced event selectors, with CloudTrail Lake's JSON shape and evaluation rules.
//!
//! Within one field selector the SELECT operators (`Equals`, `StartsWith`, `EndsWith`) are OR'd,
//! the DESELECT operators (`NotEquals`, `NotStartsWith`, `NotEndsWith`) are AND'd, and the two
//! groups are AND'd. The field selectors of a selector are AND'd, and an event is kept when any
//! selector matches (or when the store has no selectors).

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The most selectors a store may have, as in CloudTrail Lake.
pub const MAX_SELECTORS: usize = 5;
/// The most values across all conditions of all selectors, as in CloudTrail Lake.
pub const MAX_VALUES: usize = 500;

/// One advanced event selector: field conditions that must all hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub struct AdvancedEventSelector {
    /// An optional descriptive name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The conditions, AND'd.
    pub field_selectors: Vec<FieldSelector>,
}

/// Conditions on one field.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FieldSelector {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_equals: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_starts_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_with: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_ends_with: Option<Vec<String>>,
}

/// The event fields a selector may test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectorField {
    /// `eventCategory` (`Management`, `Data`, `NetworkActivity`).
    EventCategory,
    /// `eventSource`.
    EventSource,
    /// `eventName`.
    EventName,
    /// `eventType`.
    EventType,
    /// `readOnly` (`true` / `false`).
    ReadOnly,
    /// `resources.type`, any of the event's resources.
    ResourcesType,
    /// `resources.ARN`, any of the event's resources.
    ResourcesArn,
    /// `sessionCredentialFromConsole`.
    SessionCredentialFromConsole,
    /// `userIdentity.arn`.
    UserIdentityArn,
    /// `errorCode` (network activity events).
    ErrorCode,
    /// `vpcEndpointId` (network activity events).
    VpcEndpointId,
}

impl SelectorField {
    /// Parses a Lake field name (case as AWS documents it, compared case-insensitively).
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "eventcategory" => Self::EventCategory,
            "eventsource" => Self::EventSource,
            "eventname" => Self::EventName,
            "eventtype" => Self::EventType,
            "readonly" => Self::ReadOnly,
            "resources.type" => Self::ResourcesType,
            "resources.arn" => Self::ResourcesArn,
            "sessioncredentialfromconsole" => Self::SessionCredentialFromConsole,
            "useridentity.arn" => Self::UserIdentityArn,
            "errorcode" => Self::ErrorCode,
            "vpcendpointid" => Self::VpcEndpointId,
            _ => return None,
        })
    }
}

/// Access to the values of an event's selector fields.
pub trait SelectorEvent {
    /// Calls `f` with each value of `field` (none when absent, several for `resources.*`).
    fn for_each_value(&self, field: SelectorField, f: &mut dyn FnMut(&str));
}

impl FieldSelector {
    fn operators(&self) -> [(&'static str, Option<&Vec<String>>); 6] {
        [
            ("Equals", self.equals.as_ref()),
            ("NotEquals", self.not_equals.as_ref()),
            ("StartsWith", self.starts_with.as_ref()),
            ("NotStartsWith", self.not_starts_with.as_ref()),
            ("EndsWith", self.ends_with.as_ref()),
            ("NotEndsWith", self.not_ends_with.as_ref()),
        ]
    }

    fn matches(&self, field: SelectorField, event: &dyn SelectorEvent) -> bool {
        let has_select = self.equals.is_some() || self.starts_with.is_some() || self.ends_with.is_some();
        let mut selected = !has_select;
        let mut deselected = false;
        event.for_each_value(field, &mut |v| {
            let any = |list: &Option<Vec<String>>, f: &dyn Fn(&str) -> bool| {
                list.as_ref().is_some_and(|l| l.iter().any(|x| f(x)))
            };
            if any(&self.equals, &|x| v == x)
                || any(&self.starts_with, &|x| v.starts_with(x))
                || any(&self.ends_with, &|x| v.ends_with(x))
            {
                selected = true;
            }
            if any(&self.not_equals, &|x| v == x)
                || any(&self.not_starts_with, &|x| v.starts_with(x))
                || any(&self.not_ends_with, &|x| v.ends_with(x))
            {
                deselected = true;
            }
        });
        selected && !deselected
    }
}

/// Validated selectors of a store, ready to evaluate.
#[derive(Debug, Clone, Default)]
pub struct SelectorSet {
    selectors: Vec<Vec<(SelectorField, FieldSelector)>>,
}

impl SelectorSet {
    /// Validates `selectors` against Lake's rules and prepares them for evaluation.
    pub fn try_new(selectors: &[AdvancedEventSelector]) -> Result<Self> {
        let bad = |msg: String| Err(Error::InvalidSelector(msg));
        if selectors.len() > MAX_SELECTORS {
            return bad(format!("{} selectors; at most {MAX_SELECTORS}", selectors.len()));
        }
        let mut total = 0;
        let mut prepared = Vec::with_capacity(selectors.len());
        for (i, selector) in selectors.iter().enumerate() {
            let label = selector.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
            if selector.field_selectors.is_empty() {
                return bad(format!("selector {label} has no field selectors"));
            }
            let mut fields = Vec::new();
            for fs in &selector.field_selectors {
                let Some(field) = SelectorField::parse(&fs.field) else {
                    return bad(format!(
                        "selector {label}: unknown field '{}' (fields: eventCategory, eventSource, \
                         eventName, eventType, readOnly, resources.type, resources.ARN, \
                         sessionCredentialFromConsole, userIdentity.arn, errorCode, vpcEndpointId)",
                        fs.field
                    ));
                };
                let mut any = false;
                for (op, values) in fs.operators() {
                    let Some(values) = values else { continue };
                    any = true;
                    if values.is_empty() {
                        return bad(format!("selector {label}: {} {op} has no values", fs.field));
                    }
                    if let Some(v) = values.iter().find(|v| v.is_empty() || v.len() > 2048) {
                        return bad(format!(
                            "selector {label}: {} {op} value '{v}' must be 1 to 2048 characters",
                            fs.field
                        ));
                    }
                    let equals_only = matches!(
                        field,
                        SelectorField::EventCategory | SelectorField::ReadOnly | SelectorField::ResourcesType
                    );
                    if equals_only && op != "Equals" {
                        return bad(format!("selector {label}: {} supports only Equals", fs.field));
                    }
                    total += values.len();
                }
                if !any {
                    return bad(format!("selector {label}: {} has no operator", fs.field));
                }
                fields.push((field, fs.clone()));
            }
            if !fields.iter().any(|(f, _)| *f == SelectorField::EventCategory) {
                return bad(format!("selector {label} must have an eventCategory field selector"));
            }
            prepared.push(fields);
        }
        if total > MAX_VALUES {
            return bad(format!("{total} values across all selectors; at most {MAX_VALUES}"));
        }
        Ok(Self { selectors: prepared })
    }

    /// Whether the store keeps `event`.
    pub fn matches(&self, event: &dyn SelectorEvent) -> bool {
        self.selectors.is_empty()
            || self.selectors.iter().any(|fields| fields.iter().all(|(f, fs)| fs.matches(*f, event)))
    }

    /// True when every event is kept.
    pub fn is_empty(&self) -> bool {
        self.selectors.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ev(Vec<(SelectorField, &'static str)>);
    impl SelectorEvent for Ev {
        fn for_each_value(&self, field: SelectorField, f: &mut dyn FnMut(&str)) {
            self.0.iter().filter(|(k, _)| *k == field).for_each(|(_, v)| f(v));
        }
    }

    fn set(json: &str) -> SelectorSet {
        let selectors: Vec<AdvancedEventSelector> = serde_json::from_str(json).unwrap();
        SelectorSet::try_new(&selectors).unwrap()
    }

    fn mgmt(source: &'static str, name: &'static str) -> Ev {
        Ev(vec![
            (SelectorField::EventCategory, "Management"),
            (SelectorField::EventSource, source),
            (SelectorField::EventName, name),
        ])
    }

    #[test]
    fn every_operator() {
        let cases = [
            (r#""Equals":["kms.amazonaws.com"]"#, [true, false, false]),
            (r#""NotEquals":["kms.amazonaws.com"]"#, [false, true, true]),
            (r#""StartsWith":["kms"]"#, [true, false, false]),
            (r#""NotStartsWith":["kms"]"#, [false, true, true]),
            (r#""EndsWith":["3.amazonaws.com"]"#, [false, true, false]),
            (r#""NotEndsWith":["3.amazonaws.com"]"#, [true, false, true]),
        ];
        let events = [
            mgmt("kms.amazonaws.com", "Decrypt"),
            mgmt("s3.amazonaws.com", "GetObject"),
            mgmt("iam.amazonaws.com", "CreateUser"),
        ];
        for (op, expected) in cases {
            let s = set(&format!(
                r#"[{{"FieldSelectors":[{{"Field":"eventCategory","Equals":["Management"]}},{{"Field":"eventSource",{op}}}]}}]"#
            ));
            let got: Vec<bool> = events.iter().map(|e| s.matches(e)).collect();
            assert_eq!(got, expected, "{op}");
        }
    }

    #[test]
    fn select_ored_deselect_anded() {
        let s = set(r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},
                {"Field":"eventName","StartsWith":["Get"],"EndsWith":["User"],"NotEquals":["GetUser"],"NotStartsWith":["GetKey"]}]}]"#);
        assert!(s.matches(&mgmt("s3", "GetObject")));
        assert!(s.matches(&mgmt("iam", "CreateUser")));
        assert!(!s.matches(&mgmt("iam", "GetUser")));
        assert!(!s.matches(&mgmt("kms", "GetKeyPolicy")));
        assert!(!s.matches(&mgmt("kms", "Decrypt")));
    }

    #[test]
    fn selectors_ored_fields_anded() {
        let s = set(
            r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":["Management"]},{"Field":"eventSource","Equals":["iam.amazonaws.com"]}]},
                {"FieldSelectors":[{"Field":"eventCategory","Equals":["Data"]},{"Field":"resources.type","Equals":["AWS::S3::Object"]}]}]"#,
        );
        assert!(s.matches(&mgmt("iam.amazonaws.com", "CreateUser")));
        assert!(!s.matches(&mgmt("s3.amazonaws.com", "PutBucketPolicy")));
        let data = Ev(vec![
            (SelectorField::EventCategory, "Data"),
            (SelectorField::ResourcesType, "AWS::S3::Bucket"),
            (SelectorField::ResourcesType, "AWS::S3::Object"),
        ]);
        assert!(s.matches(&data));
        assert!(!s.matches(&Ev(vec![(SelectorField::EventCategory, "Data")])));
    }

    #[test]
    fn validation() {
        let err = |json: &str| {
            let selectors: Vec<AdvancedEventSelector> = serde_json::from_str(json).unwrap();
            SelectorSet::try_new(&selectors).unwrap_err().to_string()
        };
        assert!(
            err(r#"[{"FieldSelectors":[{"Field":"eventName","Equals":["X"]}]}]"#).contains("eventCategory")
        );
        assert!(err(r#"[{"FieldSelectors":[{"Field":"bogus","Equals":["X"]}]}]"#).contains("unknown field"));
        assert!(
            err(r#"[{"FieldSelectors":[{"Field":"readOnly","NotEquals":["true"]}]}]"#)
                .contains("only Equals")
        );
        assert!(err(r#"[{"FieldSelectors":[{"Field":"eventCategory","Equals":[]}]}]"#).contains("no values"));
        assert!(SelectorSet::try_new(&[]).unwrap().is_empty());
    }
}
