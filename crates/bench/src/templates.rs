//! Event templates: the real fixture events (their shapes: userIdentity, requestParameters,
//! responseElements, resources), one per API call, plus real API names of the same services
//! that borrow a template's shape, so a generated trail has the variety of a real account.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

/// An API call and the event it is generated from.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) source: String,
    pub(crate) name: String,
    /// The template's members that every generated event keeps, as JSON text (`"k":v,...`).
    pub(crate) rest: String,
    /// The template's `responseElements` (JSON text; `null` when absent).
    pub(crate) response: String,
}

/// Members each generated event sets itself.
pub(crate) const GENERATED: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestID",
    "eventID",
    "recipientAccountId",
    "eventType",
    "managementEvent",
    "eventCategory",
    "errorCode",
    "errorMessage",
    "responseElements",
    "sharedEventID",
    "vpcEndpointId",
    "insightDetails",
    "addendum",
];

impl Api {
    fn new(source: String, name: String, template: &Value) -> Self {
        let mut rest = String::new();
        if let Some(map) = template.as_object() {
            for (key, value) in map.iter().filter(|(k, _)| !GENERATED.contains(&k.as_str())) {
                if !rest.is_empty() {
                    rest.push(',');
                }
                rest.push_str(&Value::from(key.as_str()).to_string());
                rest.push(':');
                rest.push_str(&value.to_string());
            }
        }
        let response = template.get("responseElements").map_or_else(|| "null".to_owned(), Value::to_string);
        Self { source, name, rest, response }
    }
}

/// Real API names of common services (CloudTrail `eventName`s), added to those of the fixtures.
const MORE_APIS: &[(&str, &[&str])] = &[
    (
        "kms.amazonaws.com",
        &[
            "Decrypt",
            "Encrypt",
            "GenerateDataKey",
            "GenerateDataKeyWithoutPlaintext",
            "ReEncrypt",
            "DescribeKey",
            "ListKeys",
            "ListAliases",
            "GetKeyPolicy",
            "GetKeyRotationStatus",
            "ListGrants",
            "CreateGrant",
            "RetireGrant",
            "Sign",
            "Verify",
            "GetPublicKey",
            "ListResourceTags",
        ],
    ),
    (
        "sts.amazonaws.com",
        &[
            "AssumeRole",
            "AssumeRoleWithWebIdentity",
            "AssumeRoleWithSAML",
            "GetCallerIdentity",
            "GetSessionToken",
            "GetFederationToken",
            "DecodeAuthorizationMessage",
            "GetAccessKeyInfo",
        ],
    ),
    (
        "s3.amazonaws.com",
        &[
            "GetObject",
            "PutObject",
            "HeadObject",
            "DeleteObject",
            "ListObjects",
            "ListObjectsV2",
            "GetBucketLocation",
            "GetBucketAcl",
            "GetBucketPolicy",
            "GetBucketVersioning",
            "GetBucketEncryption",
            "GetBucketTagging",
            "GetBucketLogging",
            "CopyObject",
            "CreateMultipartUpload",
            "UploadPart",
            "CompleteMultipartUpload",
            "AbortMultipartUpload",
            "GetObjectTagging",
            "PutObjectTagging",
            "GetBucketPublicAccessBlock",
            "GetBucketOwnershipControls",
            "ListBuckets",
            "HeadBucket",
        ],
    ),
    (
        "ec2.amazonaws.com",
        &[
            "DescribeInstances",
            "DescribeVolumes",
            "DescribeSnapshots",
            "DescribeImages",
            "DescribeSecurityGroups",
            "DescribeSubnets",
            "DescribeVpcs",
            "DescribeNetworkInterfaces",
            "DescribeAddresses",
            "DescribeRouteTables",
            "DescribeTags",
            "DescribeRegions",
            "DescribeAvailabilityZones",
            "DescribeKeyPairs",
            "DescribeLaunchTemplates",
            "DescribeInstanceStatus",
            "DescribeInstanceTypes",
            "DescribeNatGateways",
            "DescribeInternetGateways",
            "DescribeVpcEndpoints",
            "DescribeFlowLogs",
            "DescribeNetworkAcls",
            "CreateTags",
            "DeleteTags",
            "RunInstances",
            "TerminateInstances",
            "StartInstances",
            "StopInstances",
            "CreateSnapshot",
            "DeleteSnapshot",
            "CreateVolume",
            "AttachVolume",
            "DetachVolume",
            "AuthorizeSecurityGroupIngress",
            "RevokeSecurityGroupIngress",
            "CreateSecurityGroup",
            "ModifyInstanceAttribute",
        ],
    ),
    (
        "iam.amazonaws.com",
        &[
            "GetUser",
            "GetRole",
            "GetPolicy",
            "GetPolicyVersion",
            "ListUsers",
            "ListRoles",
            "ListPolicies",
            "ListAttachedRolePolicies",
            "ListAttachedUserPolicies",
            "ListRolePolicies",
            "ListGroupsForUser",
            "ListAccessKeys",
            "ListMFADevices",
            "GetAccountSummary",
            "GetAccountPasswordPolicy",
            "GenerateCredentialReport",
            "GetCredentialReport",
            "ListInstanceProfiles",
            "ListServerCertificates",
            "SimulatePrincipalPolicy",
            "CreateAccessKey",
            "DeleteAccessKey",
            "UpdateAccessKey",
            "AttachRolePolicy",
            "DetachRolePolicy",
            "PutRolePolicy",
            "CreateRole",
            "DeleteRole",
            "CreateUser",
            "DeleteUser",
            "CreatePolicyVersion",
            "TagRole",
            "UpdateAssumeRolePolicy",
        ],
    ),
    (
        "lambda.amazonaws.com",
        &[
            "ListFunctions20150331",
            "GetFunction20150331v2",
            "ListEventSourceMappings20150331",
            "GetPolicy20150331v2",
            "UpdateFunctionCode20150331v2",
            "CreateFunction20150331",
        ],
    ),
    (
        "logs.amazonaws.com",
        &[
            "CreateLogStream",
            "DescribeLogGroups",
            "DescribeLogStreams",
            "PutRetentionPolicy",
            "FilterLogEvents",
            "GetLogEvents",
            "CreateLogGroup",
            "DeleteLogGroup",
            "PutSubscriptionFilter",
            "StartQuery",
            "GetQueryResults",
        ],
    ),
    (
        "cloudtrail.amazonaws.com",
        &[
            "DescribeTrails",
            "GetTrailStatus",
            "GetEventSelectors",
            "LookupEvents",
            "ListTrails",
            "GetTrail",
            "StartLogging",
            "StopLogging",
            "UpdateTrail",
            "DeleteTrail",
            "PutEventSelectors",
        ],
    ),
    (
        "monitoring.amazonaws.com",
        &[
            "DescribeAlarms",
            "GetMetricData",
            "ListMetrics",
            "PutMetricAlarm",
            "DeleteAlarms",
            "GetMetricStatistics",
            "DescribeAlarmHistory",
        ],
    ),
    (
        "ssm.amazonaws.com",
        &[
            "GetParameter",
            "GetParameters",
            "GetParametersByPath",
            "DescribeInstanceInformation",
            "ListCommands",
            "SendCommand",
            "StartSession",
            "DescribeParameters",
            "PutParameter",
            "ListAssociations",
            "UpdateInstanceInformation",
        ],
    ),
    (
        "secretsmanager.amazonaws.com",
        &[
            "GetSecretValue",
            "DescribeSecret",
            "ListSecrets",
            "PutSecretValue",
            "CreateSecret",
            "RotateSecret",
            "BatchGetSecretValue",
        ],
    ),
    (
        "dynamodb.amazonaws.com",
        &[
            "DescribeTable",
            "ListTables",
            "DescribeContinuousBackups",
            "DescribeTimeToLive",
            "ListTagsOfResource",
            "CreateTable",
            "UpdateTable",
            "DeleteTable",
            "DescribeLimits",
        ],
    ),
    (
        "rds.amazonaws.com",
        &[
            "DescribeDBInstances",
            "DescribeDBClusters",
            "DescribeDBSnapshots",
            "DescribeDBParameterGroups",
            "ModifyDBInstance",
            "CreateDBSnapshot",
            "DescribeEvents",
        ],
    ),
    (
        "sns.amazonaws.com",
        &["ListTopics", "GetTopicAttributes", "ListSubscriptions", "Publish", "CreateTopic", "Subscribe"],
    ),
    (
        "sqs.amazonaws.com",
        &["ListQueues", "GetQueueAttributes", "CreateQueue", "DeleteQueue", "SetQueueAttributes"],
    ),
    (
        "config.amazonaws.com",
        &[
            "DescribeConfigRules",
            "DescribeConfigurationRecorders",
            "DescribeConfigurationRecorderStatus",
            "DescribeDeliveryChannels",
            "PutEvaluations",
            "GetComplianceDetailsByConfigRule",
        ],
    ),
    (
        "guardduty.amazonaws.com",
        &["ListDetectors", "GetDetector", "ListFindings", "GetFindings", "DeleteDetector", "UpdateDetector"],
    ),
    (
        "organizations.amazonaws.com",
        &[
            "DescribeOrganization",
            "ListAccounts",
            "ListRoots",
            "ListPolicies",
            "DescribeAccount",
            "ListOrganizationalUnitsForParent",
        ],
    ),
    (
        "ecr.amazonaws.com",
        &[
            "GetAuthorizationToken",
            "BatchGetImage",
            "GetDownloadUrlForLayer",
            "DescribeRepositories",
            "DescribeImages",
            "ListImages",
            "PutImage",
        ],
    ),
    (
        "ecs.amazonaws.com",
        &[
            "ListClusters",
            "DescribeClusters",
            "ListTasks",
            "DescribeTasks",
            "ListServices",
            "DescribeServices",
            "RunTask",
            "UpdateService",
        ],
    ),
    ("eks.amazonaws.com", &["ListClusters", "DescribeCluster", "ListNodegroups", "DescribeNodegroup"]),
    (
        "elasticloadbalancing.amazonaws.com",
        &["DescribeLoadBalancers", "DescribeTargetGroups", "DescribeTargetHealth", "DescribeListeners"],
    ),
    (
        "autoscaling.amazonaws.com",
        &["DescribeAutoScalingGroups", "DescribeLaunchConfigurations", "DescribeScalingActivities"],
    ),
    (
        "route53.amazonaws.com",
        &["ListHostedZones", "GetHostedZone", "ListResourceRecordSets", "ChangeResourceRecordSets"],
    ),
    (
        "cloudformation.amazonaws.com",
        &[
            "DescribeStacks",
            "ListStacks",
            "DescribeStackEvents",
            "DescribeStackResources",
            "GetTemplate",
            "CreateStack",
            "UpdateStack",
        ],
    ),
];

/// The API calls: one per distinct (eventSource, eventName) of the events under `dir`, then
/// [`MORE_APIS`], each borrowing a template of its service.
pub(crate) fn load(dir: &Path) -> Result<Vec<Api>> {
    let mut events = Vec::new();
    collect(dir, &mut events)?;
    let mut apis: BTreeMap<(String, String), Value> = BTreeMap::new();
    for event in events {
        let (Some(source), Some(name)) = (str_of(&event, "eventSource"), str_of(&event, "eventName")) else {
            continue;
        };
        if str_of(&event, "eventType").as_deref() == Some("AwsCloudTrailInsight") {
            continue;
        }
        apis.entry((source, name)).or_insert(event);
    }
    anyhow::ensure!(!apis.is_empty(), "no CloudTrail events under {}", dir.display());
    for (service, names) in MORE_APIS {
        let template = apis
            .iter()
            .find(|((source, _), _)| source == service)
            .or_else(|| apis.iter().find(|((source, _), _)| source == "ec2.amazonaws.com"))
            .or_else(|| apis.iter().next())
            .map(|(_, t)| t.clone())
            .expect("at least one template");
        for name in *names {
            let key = ((*service).to_owned(), (*name).to_owned());
            apis.entry(key).or_insert_with(|| {
                let mut t = template.clone();
                t["eventSource"] = Value::from(*service);
                t["eventName"] = Value::from(*name);
                let read_only = ["Describe", "List", "Get", "Head", "Lookup", "Filter", "BatchGet"]
                    .iter()
                    .any(|p| name.starts_with(p));
                t["readOnly"] = Value::from(read_only);
                t
            });
        }
    }
    Ok(apis.into_iter().map(|((source, name), template)| Api::new(source, name, &template)).collect())
}

fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Every event of the JSON files under `dir` (Records files, arrays, NDJSON, gzip or not;
/// LookupEvents' `CloudTrailEvent` strings unwrapped). Files that do not parse are skipped:
/// templates need only a fair sample.
fn collect(dir: &Path, out: &mut Vec<Value>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read templates directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if path.is_dir() {
            // The processing library's placeholder events are synthetic: not templates.
            if !name.starts_with("edge-cases") {
                collect(&path, out)?;
            }
            continue;
        }
        if !trawl_store::trail::is_json_file(&name) {
            continue;
        }
        let raw = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let text = if raw.starts_with(&[0x1f, 0x8b]) {
            let mut s = String::new();
            if flate2::read::MultiGzDecoder::new(&raw[..]).read_to_string(&mut s).is_err() {
                continue;
            }
            s
        } else {
            match String::from_utf8(raw) {
                Ok(s) => s,
                Err(_) => continue,
            }
        };
        match serde_json::from_str::<Value>(&text) {
            Ok(doc) => events_of(doc, out),
            Err(_) => {
                for line in text.lines() {
                    if let Ok(doc) = serde_json::from_str::<Value>(line) {
                        events_of(doc, out);
                    }
                }
            }
        }
    }
    Ok(())
}

fn events_of(doc: Value, out: &mut Vec<Value>) {
    match doc {
        Value::Array(items) => items.into_iter().for_each(|v| events_of(v, out)),
        Value::Object(mut map) => {
            if let Some(records) = map.remove("Records") {
                events_of(records, out);
            } else if let Some(Value::String(inner)) = map.get("CloudTrailEvent") {
                if let Ok(v) = serde_json::from_str(inner) {
                    events_of(v, out);
                }
            } else if map.contains_key("eventName") && map.contains_key("eventSource") {
                out.push(Value::Object(map));
            }
        }
        _ => {}
    }
}
