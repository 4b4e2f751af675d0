//! `aws:ec2:LaunchTemplate`: an EC2 launch template (image, instance type, key, security
//! groups, user data, block devices, instance metadata options, instance profile, tags for
//! the instances and volumes it launches).
//!
//! Rules kept here: the name is the user's or `<name>-<8 hex>` from the stack and address, and a new
//! name forces a replacement, done by deleting first (names are unique per region); any
//! change of the template data makes a new version (CreateLaunchTemplateVersion, the whole
//! data, not a patch of the previous version) and makes it the default (ModifyLaunchTemplate)
//! in the same update, as Terraform's `aws_launch_template` does, so the template keeps its
//! id and whoever refers to `latest_version`/`default_version` sees the new number (both are
//! volatile outputs); the template's own tags change in place (CreateTags/DeleteTags) and
//! make no version. The template is tagged `spar:address` and `spar:stack` at creation (TagSpecifications of
//! type `launch-template`); the tags in the data (`tag_specifications`, for instances and
//! volumes) are the user's only. User data is plain text in the program and in state; spar
//! base64-encodes it for AWS and decodes it on read. `read` maps the default version's data
//! back to the program's shape (so an out-of-band new default version is drift) and accepts
//! a template id (`lt-...`) or, for import, a name. Lookups take `id`/`ids` and tags
//! (DescribeLaunchTemplates, paged) and read each match as an import reads it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use aws_sdk_ec2::types::{
    LaunchTemplateBlockDeviceMappingRequest, LaunchTemplateEbsBlockDeviceRequest, LaunchTemplateHttpTokensState,
    LaunchTemplateIamInstanceProfileSpecificationRequest, LaunchTemplateInstanceMetadataEndpointState,
    LaunchTemplateInstanceMetadataOptionsRequest, LaunchTemplateTagSpecificationRequest, RequestLaunchTemplateData,
    ResourceType, ResponseLaunchTemplateData, VolumeType,
};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{WAIT, filter, from_tags, owner_filter, parse, sync_tags, tag_spec, to_tags, unless_unset};
use crate::aws::call::{AwsError, all_pages, call0};
use crate::aws::context;
use crate::aws::lifecycle::{found, kind_basics, provider, still_listed, wait_gone, wait_ready};
use crate::aws::tags::{unique_name, user_tags};
use crate::declaration::Expr;
use crate::model::{Handle, Input, Output};
use crate::provider::{Created, OpContext, ProviderError, ReadResult, ResourceProvider, Schema};

pub const KIND: &str = "aws:ec2:LaunchTemplate";

/// Whether instances must use IMDSv2 session tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HttpTokens {
    /// IMDSv2 only.
    Required,
    /// IMDSv1 or IMDSv2.
    Optional,
}

/// The instance metadata service options of the launched instances. Fields left `None`
/// are AWS's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataOptions {
    #[serde(default)]
    pub http_tokens: Option<HttpTokens>,
    /// Hops a metadata answer may travel (1-64; 2 lets containers reach it).
    #[serde(default)]
    pub http_put_response_hop_limit: Option<i32>,
    /// Whether the metadata endpoint is on (`enabled`/`disabled` in AWS).
    #[serde(default)]
    pub http_endpoint_enabled: Option<bool>,
}

impl MetadataOptions {
    pub fn new() -> Self {
        Self::default()
    }
    /// IMDSv2 required, the endpoint on, answers reaching `hop_limit` hops.
    pub fn imdsv2(hop_limit: i32) -> Self {
        MetadataOptions {
            http_tokens: Some(HttpTokens::Required),
            http_put_response_hop_limit: Some(hop_limit),
            http_endpoint_enabled: Some(true),
        }
    }
    pub fn http_tokens(mut self, t: HttpTokens) -> Self {
        self.http_tokens = Some(t);
        self
    }
    pub fn hop_limit(mut self, n: i32) -> Self {
        self.http_put_response_hop_limit = Some(n);
        self
    }
    pub fn endpoint(mut self, enabled: bool) -> Self {
        self.http_endpoint_enabled = Some(enabled);
        self
    }
}

/// An EBS volume of the launched instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockDevice {
    /// `/dev/xvda`, `/dev/sdb`, ...
    pub device_name: String,
    /// GiB.
    #[serde(default)]
    pub volume_size: Option<i32>,
    /// `gp3`, `gp2`, `io2`, ...
    #[serde(default)]
    pub volume_type: Option<String>,
    #[serde(default)]
    pub encrypted: Option<bool>,
    #[serde(default)]
    pub delete_on_termination: Option<bool>,
}

impl BlockDevice {
    /// An EBS volume of `size_gib` at `device_name`.
    pub fn ebs(device_name: &str, size_gib: i32) -> Self {
        BlockDevice {
            device_name: device_name.into(),
            volume_size: Some(size_gib),
            volume_type: None,
            encrypted: None,
            delete_on_termination: None,
        }
    }
    pub fn volume_type(mut self, t: &str) -> Self {
        self.volume_type = Some(t.into());
        self
    }
    pub fn encrypted(mut self, yes: bool) -> Self {
        self.encrypted = Some(yes);
        self
    }
    pub fn delete_on_termination(mut self, yes: bool) -> Self {
        self.delete_on_termination = Some(yes);
        self
    }
}

#[derive(Debug, Clone, Serialize)]
struct ProfileRef {
    name: Option<Input<String>>,
    arn: Option<Input<String>>,
}

/// An EC2 launch template. Every field of the template data is optional, as in AWS (a
/// template for an EKS managed node group often sets only metadata options and disks).
#[derive(Debug, Clone, Serialize)]
pub struct LaunchTemplate {
    name: Option<Input<String>>,
    image_id: Option<Input<String>>,
    instance_type: Option<String>,
    key_name: Option<Input<String>>,
    security_group_ids: Vec<Input<String>>,
    user_data: Option<Input<String>>,
    block_device_mappings: Vec<BlockDevice>,
    metadata_options: Option<MetadataOptions>,
    iam_instance_profile: Option<ProfileRef>,
    tag_specifications: BTreeMap<String, BTreeMap<String, Input<String>>>,
    tags: BTreeMap<String, Input<String>>,
}

impl Default for LaunchTemplate {
    fn default() -> Self {
        Self::new()
    }
}

impl LaunchTemplate {
    pub fn new() -> Self {
        LaunchTemplate {
            name: None,
            image_id: None,
            instance_type: None,
            key_name: None,
            security_group_ids: Vec::new(),
            user_data: None,
            block_device_mappings: Vec::new(),
            metadata_options: None,
            iam_instance_profile: None,
            tag_specifications: BTreeMap::new(),
            tags: BTreeMap::new(),
        }
    }
    /// Fixes the template name (default: `<resource name>-<8 hex>`). Forces a replacement.
    pub fn name(mut self, name: impl Into<Input<String>>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// The AMI (`ami-...`).
    pub fn image_id(mut self, id: impl Into<Input<String>>) -> Self {
        self.image_id = Some(id.into());
        self
    }
    /// `m7g.large`, `t3.micro`, ...
    pub fn instance_type(mut self, t: &str) -> Self {
        self.instance_type = Some(t.into());
        self
    }
    /// The EC2 key pair's name.
    pub fn key_name(mut self, name: impl Into<Input<String>>) -> Self {
        self.key_name = Some(name.into());
        self
    }
    pub fn security_group_id(mut self, id: impl Into<Input<String>>) -> Self {
        self.security_group_ids.push(id.into());
        self
    }
    pub fn security_group_ids(mut self, ids: Vec<Input<String>>) -> Self {
        self.security_group_ids = ids;
        self
    }
    /// User data as plain text (a script, a MIME multipart document); spar base64-encodes it.
    pub fn user_data(mut self, text: impl Into<Input<String>>) -> Self {
        self.user_data = Some(text.into());
        self
    }
    pub fn block_device(mut self, d: BlockDevice) -> Self {
        self.block_device_mappings.push(d);
        self
    }
    pub fn metadata_options(mut self, m: MetadataOptions) -> Self {
        self.metadata_options = Some(m);
        self
    }
    /// The instance profile, by name.
    pub fn iam_instance_profile_name(mut self, name: impl Into<Input<String>>) -> Self {
        self.iam_instance_profile = Some(ProfileRef {
            name: Some(name.into()),
            arn: None,
        });
        self
    }
    /// The instance profile, by ARN.
    pub fn iam_instance_profile_arn(mut self, arn: impl Into<Input<String>>) -> Self {
        self.iam_instance_profile = Some(ProfileRef {
            name: None,
            arn: Some(arn.into()),
        });
        self
    }
    /// A tag the template puts on what it launches: `resource_type` is AWS's
    /// (`instance`, `volume`, `network-interface`, `spot-instances-request`).
    pub fn tag_for(mut self, resource_type: &str, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tag_specifications
            .entry(resource_type.into())
            .or_default()
            .insert(key.into(), value.into());
        self
    }
    /// A tag on the instances the template launches.
    pub fn instance_tag(self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tag_for("instance", key, value)
    }
    /// A tag on the volumes the template launches.
    pub fn volume_tag(self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tag_for("volume", key, value)
    }
    /// A tag on the template itself.
    pub fn tag(mut self, key: &str, value: impl Into<Input<String>>) -> Self {
        self.tags.insert(key.into(), value.into());
        self
    }
}

impl LaunchTemplate {
    /// Existing launch templates, by id or ids, or by tags
    /// (`LaunchTemplate::lookup().ids(nodegroup.launch_template_ids())`), each read as an
    /// imported template is.
    pub fn lookup() -> crate::aws::lookup::Ec2Lookup<LaunchTemplate> {
        crate::aws::lookup::Ec2Lookup::for_kind(KIND, std::sync::Arc::new(LaunchTemplateProvider::new()))
    }
}

impl Handle<LaunchTemplate> {
    /// The template id (`lt-...`).
    pub fn template_id(&self) -> Output<String> {
        self.output("id")
    }
    pub fn arn(&self) -> Output<String> {
        self.output("arn")
    }
    pub fn name(&self) -> Output<String> {
        self.output("name")
    }
    /// The newest version's number (it grows with every change of the template data).
    pub fn latest_version(&self) -> Output<i64> {
        self.output("latest_version")
    }
    /// The default version's number (spar makes every new version the default).
    pub fn default_version(&self) -> Output<i64> {
        self.output("default_version")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct ProfileInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arn: Option<String>,
}

/// The template data: whatever of it changes makes a new version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
struct DataInputs {
    #[serde(default)]
    image_id: Option<String>,
    #[serde(default)]
    instance_type: Option<String>,
    #[serde(default)]
    key_name: Option<String>,
    #[serde(default)]
    security_group_ids: Vec<String>,
    #[serde(default)]
    user_data: Option<String>,
    #[serde(default)]
    block_device_mappings: Vec<BlockDevice>,
    #[serde(default)]
    metadata_options: Option<MetadataOptions>,
    #[serde(default)]
    iam_instance_profile: Option<ProfileInputs>,
    #[serde(default)]
    tag_specifications: BTreeMap<String, BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct TemplateInputs {
    #[serde(default)]
    name: Option<String>,
    #[serde(flatten)]
    data: DataInputs,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

impl DataInputs {
    fn check(&self) -> Result<(), ProviderError> {
        if let Some(p) = &self.iam_instance_profile
            && p.name.is_some() == p.arn.is_some()
        {
            return Err(ProviderError::msg(
                "iam_instance_profile needs exactly one of name and arn",
            ));
        }
        if let Some(n) = self
            .metadata_options
            .as_ref()
            .and_then(|m| m.http_put_response_hop_limit)
            && !(1..=64).contains(&n)
        {
            return Err(ProviderError::msg(format!(
                "metadata_options.http_put_response_hop_limit {n} must be between 1 and 64"
            )));
        }
        if self.tag_specifications.contains_key("launch-template") {
            return Err(ProviderError::msg(
                "tag_specifications are for what the template launches; tag the template itself with tags",
            ));
        }
        Ok(())
    }

    /// The data in AWS's request shape.
    fn request(&self) -> RequestLaunchTemplateData {
        let mut d = RequestLaunchTemplateData::builder()
            .set_image_id(self.image_id.clone())
            .set_instance_type(self.instance_type.as_deref().map(Into::into))
            .set_key_name(self.key_name.clone())
            .set_security_group_ids((!self.security_group_ids.is_empty()).then(|| self.security_group_ids.clone()))
            .set_user_data(
                self.user_data
                    .as_ref()
                    .map(|u| base64::engine::general_purpose::STANDARD.encode(u.as_bytes())),
            );
        for b in &self.block_device_mappings {
            d = d.block_device_mappings(
                LaunchTemplateBlockDeviceMappingRequest::builder()
                    .device_name(&b.device_name)
                    .ebs(
                        LaunchTemplateEbsBlockDeviceRequest::builder()
                            .set_volume_size(b.volume_size)
                            .set_volume_type(b.volume_type.as_deref().map(VolumeType::from))
                            .set_encrypted(b.encrypted)
                            .set_delete_on_termination(b.delete_on_termination)
                            .build(),
                    )
                    .build(),
            );
        }
        if let Some(m) = &self.metadata_options {
            d = d.metadata_options(
                LaunchTemplateInstanceMetadataOptionsRequest::builder()
                    .set_http_tokens(m.http_tokens.map(|t| match t {
                        HttpTokens::Required => LaunchTemplateHttpTokensState::Required,
                        HttpTokens::Optional => LaunchTemplateHttpTokensState::Optional,
                    }))
                    .set_http_put_response_hop_limit(m.http_put_response_hop_limit)
                    .set_http_endpoint(m.http_endpoint_enabled.map(|on| {
                        if on {
                            LaunchTemplateInstanceMetadataEndpointState::Enabled
                        } else {
                            LaunchTemplateInstanceMetadataEndpointState::Disabled
                        }
                    }))
                    .build(),
            );
        }
        if let Some(p) = &self.iam_instance_profile {
            d = d.iam_instance_profile(
                LaunchTemplateIamInstanceProfileSpecificationRequest::builder()
                    .set_name(p.name.clone())
                    .set_arn(p.arn.clone())
                    .build(),
            );
        }
        for (rt, tags) in &self.tag_specifications {
            if tags.is_empty() {
                continue;
            }
            d = d.tag_specifications(
                LaunchTemplateTagSpecificationRequest::builder()
                    .resource_type(ResourceType::from(rt.as_str()))
                    .set_tags(Some(to_tags(tags)))
                    .build(),
            );
        }
        d.build()
    }
}

/// The data of a live version, in the program's shape. `stored` (the inputs in state, or
/// null when importing) keeps the program's order of security groups when the set is the
/// same.
fn live_data(d: &ResponseLaunchTemplateData, stored: &Value) -> Value {
    let mut groups: Vec<String> = d.security_group_ids().to_vec();
    if let Some(order) = stored
        .get("security_group_ids")
        .and_then(|v| serde_json::from_value::<Vec<String>>(v.clone()).ok())
    {
        let (mut a, mut b) = (order.clone(), groups.clone());
        a.sort();
        b.sort();
        if a == b {
            groups = order;
        }
    }
    let user_data = d.user_data().filter(|u| !u.is_empty()).map(|u| {
        match base64::engine::general_purpose::STANDARD.decode(u.trim()) {
            Ok(bytes) => String::from_utf8(bytes).unwrap_or_else(|_| u.to_string()),
            Err(_) => u.to_string(),
        }
    });
    let devices: Vec<Value> = d
        .block_device_mappings()
        .iter()
        .map(|m| {
            let ebs = m.ebs();
            json!({
                "device_name": m.device_name(),
                "volume_size": ebs.and_then(|e| e.volume_size()),
                "volume_type": ebs.and_then(|e| e.volume_type()).map(|t| t.as_str()),
                "encrypted": ebs.and_then(|e| e.encrypted()),
                "delete_on_termination": ebs.and_then(|e| e.delete_on_termination()),
            })
        })
        .collect();
    let metadata = d.metadata_options().map(|m| {
        json!({
            "http_tokens": m.http_tokens().map(|t| t.as_str()),
            "http_put_response_hop_limit": m.http_put_response_hop_limit(),
            "http_endpoint_enabled": m.http_endpoint().map(|e| e.as_str() == "enabled"),
        })
    });
    let profile = d
        .iam_instance_profile()
        .map(|p| json!({"name": p.name(), "arn": p.arn()}));
    let mut tag_specs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for s in d.tag_specifications() {
        let Some(rt) = s.resource_type().map(|r| r.as_str().to_string()) else {
            continue;
        };
        // The template's own tags are not template data (the emulator echoes them there).
        if rt == "launch-template" {
            continue;
        }
        let tags = from_tags(s.tags());
        if !tags.is_empty() {
            tag_specs.entry(rt).or_default().extend(tags);
        }
    }
    json!({
        "image_id": d.image_id(),
        "instance_type": d.instance_type().map(|t| t.as_str()),
        "key_name": d.key_name(),
        "security_group_ids": groups,
        "user_data": user_data,
        "block_device_mappings": devices,
        "metadata_options": metadata,
        "iam_instance_profile": profile,
        "tag_specifications": tag_specs,
    })
}

provider!(
    /// The provider of `aws:ec2:LaunchTemplate`.
    LaunchTemplateProvider for LaunchTemplate (KIND),
    Schema::new()
        .replace_on(&["name"])
        .volatile_outputs(&["latest_version", "default_version"])
        .delete_before_replace(true)
);

fn template_name(ctx: &OpContext, user: Option<&str>) -> String {
    match user {
        Some(n) => n.to_string(),
        None => unique_name(ctx, None, 128, |c| c.is_ascii_alphanumeric() || "()./_-".contains(c)),
    }
}

/// True for the answers meaning "no such template" (AWS spells them two ways).
fn gone(e: &AwsError) -> bool {
    e.is_not_found() || e.is_any(&["InvalidLaunchTemplateName.NotFoundException"])
}

/// Describes the template `id` (`lt-...`) or, when it is no id, the template named `id`.
async fn describe(ctx: &OpContext, id: &str) -> Result<Option<aws_sdk_ec2::types::LaunchTemplate>, ProviderError> {
    let ec2 = context::ec2().await;
    let by_id = id.starts_with("lt-");
    let r = call0(ctx, "DescribeLaunchTemplates", || {
        let req = ec2.describe_launch_templates();
        if by_id {
            req.launch_template_ids(id).send()
        } else {
            req.launch_template_names(id).send()
        }
    })
    .await;
    match r {
        Ok(o) => Ok(o.launch_templates().first().cloned()),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The data of version `version` of template `id`; `None` when the template is gone.
async fn version_data(
    ctx: &OpContext,
    id: &str,
    version: i64,
) -> Result<Option<ResponseLaunchTemplateData>, ProviderError> {
    let ec2 = context::ec2().await;
    let r = call0(ctx, "DescribeLaunchTemplateVersions", || {
        ec2.describe_launch_template_versions()
            .launch_template_id(id)
            .versions(version.to_string())
            .send()
    })
    .await;
    match r {
        Ok(o) => Ok(o.launch_template_versions().first().map(|v| {
            v.launch_template_data()
                .cloned()
                .unwrap_or_else(|| ResponseLaunchTemplateData::builder().build())
        })),
        Err(e) if gone(&e) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The user's tags on template `id`, from DescribeTags: the emulator's DescribeLaunchTemplates
/// answers the tags the template was created with, never later changes (AWS answers the
/// live ones, which DescribeTags gives on both).
async fn live_tags(ctx: &OpContext, id: &str) -> Result<BTreeMap<String, String>, ProviderError> {
    let ec2 = context::ec2().await;
    let tags = all_pages(
        ctx,
        "DescribeTags",
        |token| {
            ec2.describe_tags()
                .filters(filter("resource-id", id))
                .set_next_token(token)
                .send()
        },
        |out| {
            let pairs = out.tags().iter().map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            });
            (pairs.collect(), out.next_token().map(String::from))
        },
    )
    .await?;
    Ok(user_tags(tags.iter().map(|(k, v)| (k.as_str(), v.as_str()))))
}

async fn outputs(t: &aws_sdk_ec2::types::LaunchTemplate) -> Value {
    let id = t.launch_template_id().unwrap_or_default();
    // `CreatedBy` is an ARN in the owning account (`arn:aws:iam::123456789012:root`).
    let account = t.created_by().and_then(|a| a.split(':').nth(4)).unwrap_or_default();
    json!({
        "id": id,
        "arn": super::arn(account, "launch-template", id).await,
        "name": t.launch_template_name(),
        "latest_version": t.latest_version_number(),
        "default_version": t.default_version_number(),
    })
}

async fn wait_visible(ctx: &OpContext, id: &str) -> Result<aws_sdk_ec2::types::LaunchTemplate, ProviderError> {
    wait_ready(
        ctx,
        "the launch template to be visible",
        WAIT,
        || describe(ctx, id),
        found,
    )
    .await
}

#[async_trait]
impl ResourceProvider for LaunchTemplateProvider {
    kind_basics!(KIND, declare);

    async fn create(&self, ctx: &OpContext, inputs: &Value) -> Result<Created, ProviderError> {
        let i: TemplateInputs = parse(inputs)?;
        i.data.check()?;
        let name = template_name(ctx, i.name.as_deref());
        let ec2 = context::ec2().await;
        let data = i.data.request();
        let out = call0(ctx, "CreateLaunchTemplate", || {
            ec2.create_launch_template()
                .launch_template_name(&name)
                .launch_template_data(data.clone())
                .tag_specifications(tag_spec(ResourceType::LaunchTemplate, ctx, &i.tags))
                .send()
        })
        .await?;
        let id = out
            .launch_template()
            .and_then(|t| t.launch_template_id())
            .ok_or_else(|| ProviderError::msg("CreateLaunchTemplate: AWS returned no launch template id"))?
            .to_string();
        let t = wait_visible(ctx, &id).await?;
        Ok(Created {
            id,
            outputs: outputs(&t).await,
        })
    }

    async fn read(
        &self,
        ctx: &OpContext,
        id: &str,
        inputs: &Value,
        _outputs: &Value,
    ) -> Result<Option<ReadResult>, ProviderError> {
        let Some(t) = describe(ctx, id).await? else {
            return Ok(None);
        };
        let real_id = t.launch_template_id().unwrap_or_default().to_string();
        let default = t.default_version_number().unwrap_or(1);
        let Some(data) = version_data(ctx, &real_id, default).await? else {
            return Ok(None);
        };
        let mut live = live_data(&data, inputs);
        let obj = live.as_object_mut().expect("an object");
        obj.insert(
            "name".into(),
            unless_unset(inputs, "name", json!(t.launch_template_name())),
        );
        obj.insert("tags".into(), json!(live_tags(ctx, &real_id).await?));
        Ok(Some(ReadResult {
            id: real_id,
            inputs: live,
            outputs: outputs(&t).await,
        }))
    }

    async fn lookup(&self, ctx: &OpContext, query: &Value) -> Result<Vec<ReadResult>, ProviderError> {
        // Templates belong to no VPC, and `name` is the security groups' filter.
        let Some(q) = crate::aws::lookup::Ec2Query::for_lookup(query, KIND, &["vpc_id", "name"])? else {
            return Ok(Vec::new());
        };
        let ec2 = context::ec2().await;
        let ids = all_pages(
            ctx,
            "DescribeLaunchTemplates",
            |token| {
                ec2.describe_launch_templates()
                    .set_launch_template_ids(q.object_ids())
                    .set_filters(Some(q.filters()))
                    .set_next_token(token)
                    .send()
            },
            |out| {
                let ids = out.launch_templates().iter();
                let ids = ids.filter_map(|t| t.launch_template_id().map(String::from));
                (ids.collect(), out.next_token().map(String::from))
            },
        )
        .await?;
        // The data is in the default version, which `read` fetches: one read per template.
        crate::aws::lookup::read_each(self, ctx, ids).await
    }

    async fn update(
        &self,
        ctx: &OpContext,
        id: &str,
        old: &Value,
        new: &Value,
        old_outputs: &Value,
    ) -> Result<Value, ProviderError> {
        let o: TemplateInputs = parse(old)?;
        let n: TemplateInputs = parse(new)?;
        n.data.check()?;
        let ec2 = context::ec2().await;
        if o.data != n.data {
            let data = n.data.request();
            let made = call0(ctx, "CreateLaunchTemplateVersion", || {
                ec2.create_launch_template_version()
                    .launch_template_id(id)
                    .launch_template_data(data.clone())
                    .send()
            })
            .await?;
            let version = made
                .launch_template_version()
                .and_then(|v| v.version_number())
                .ok_or_else(|| ProviderError::msg("CreateLaunchTemplateVersion: AWS returned no version number"))?;
            ctx.progress(&format!("made version {version}; making it the default"));
            call0(ctx, "ModifyLaunchTemplate", || {
                ec2.modify_launch_template()
                    .launch_template_id(id)
                    .default_version(version.to_string())
                    .send()
            })
            .await?;
        }
        sync_tags(ctx, id, &o.tags, &n.tags).await?;
        match describe(ctx, id).await? {
            Some(t) => Ok(outputs(&t).await),
            None if o.data == n.data => Ok(old_outputs.clone()),
            None => Err(ProviderError::msg(format!(
                "DescribeLaunchTemplates: launch template {id} is gone"
            ))),
        }
    }

    async fn delete(&self, ctx: &OpContext, id: &str, _inputs: &Value, _outputs: &Value) -> Result<(), ProviderError> {
        let ec2 = context::ec2().await;
        match call0(ctx, "DeleteLaunchTemplate", || {
            ec2.delete_launch_template().launch_template_id(id).send()
        })
        .await
        {
            Ok(_) => {}
            Err(e) if gone(&e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        wait_gone(
            ctx,
            "the launch template to be deleted",
            WAIT,
            || describe(ctx, id),
            still_listed,
        )
        .await
    }

    async fn find(&self, ctx: &OpContext, _inputs: &Value) -> Result<Option<Created>, ProviderError> {
        let ec2 = context::ec2().await;
        let out = call0(ctx, "DescribeLaunchTemplates", || {
            ec2.describe_launch_templates()
                .filters(owner_filter(&ctx.address))
                .send()
        })
        .await?;
        match out
            .launch_templates()
            .iter()
            .find(|t| super::adoptable(ctx, t.tags(), t.launch_template_id()))
        {
            Some(t) => Ok(Some(Created {
                id: t.launch_template_id().unwrap_or_default().to_string(),
                outputs: outputs(t).await,
            })),
            None => Ok(None),
        }
    }
}

/// `ec2::LaunchTemplate::new()` with a setter for each field the template sets: disks as
/// `ec2::BlockDevice::ebs(...)`, metadata options as `ec2::MetadataOptions::new()...`, tag
/// specifications as `tag_for(resource type, key, value)`.
fn declare(i: &Value) -> Option<Expr> {
    use crate::declaration::{input_vec, only_keys, str_at, string, strs_at};
    if !only_keys(
        i,
        &[
            "name",
            "image_id",
            "instance_type",
            "key_name",
            "security_group_ids",
            "user_data",
            "block_device_mappings",
            "metadata_options",
            "iam_instance_profile",
            "tag_specifications",
            "tags",
        ],
    ) {
        return None;
    }
    let mut e = Expr::new("ec2::LaunchTemplate::new", &[])
        .str_setter(i, "name", "name")?
        .str_setter(i, "image_id", "image_id")?
        .str_setter(i, "instance_type", "instance_type")?
        .str_setter(i, "key_name", "key_name")?;
    let groups = strs_at(i, "security_group_ids")?;
    e = e.call_if(!groups.is_empty(), "security_group_ids", &[input_vec(&groups)]);
    e = e.str_setter(i, "user_data", "user_data")?;
    for d in i
        .get("block_device_mappings")
        .and_then(Value::as_array)
        .map_or(&[][..], |a| a)
    {
        let d: BlockDevice = serde_json::from_value(d.clone()).ok()?;
        let mut dev = Expr::new(
            "ec2::BlockDevice::ebs",
            &[string(&d.device_name), d.volume_size?.to_string()],
        );
        if let Some(t) = &d.volume_type {
            dev = dev.call("volume_type", &[string(t)]);
        }
        if let Some(b) = d.encrypted {
            dev = dev.call("encrypted", &[b.to_string()]);
        }
        if let Some(b) = d.delete_on_termination {
            dev = dev.call("delete_on_termination", &[b.to_string()]);
        }
        e = e.call("block_device", &[dev.source().to_string()]);
    }
    if let Some(m) = i.get("metadata_options").filter(|m| !m.is_null()) {
        let m: MetadataOptions = serde_json::from_value(m.clone()).ok()?;
        let mut opts = Expr::new("ec2::MetadataOptions::new", &[]);
        if let Some(t) = &m.http_tokens {
            let t = match t {
                HttpTokens::Required => "ec2::HttpTokens::Required",
                HttpTokens::Optional => "ec2::HttpTokens::Optional",
            };
            opts = opts.call("http_tokens", &[t.into()]);
        }
        if let Some(n) = m.http_put_response_hop_limit {
            opts = opts.call("hop_limit", &[n.to_string()]);
        }
        if let Some(b) = m.http_endpoint_enabled {
            opts = opts.call("endpoint", &[b.to_string()]);
        }
        e = e.call("metadata_options", &[opts.source().to_string()]);
    }
    if let Some(p) = i.get("iam_instance_profile").filter(|p| !p.is_null()) {
        e = match (str_at(p, "name"), str_at(p, "arn")) {
            (Some(n), None) => e.call("iam_instance_profile_name", &[string(n)]),
            (None, Some(a)) => e.call("iam_instance_profile_arn", &[string(a)]),
            _ => return None,
        };
    }
    if let Some(specs) = i.get("tag_specifications").and_then(Value::as_object) {
        for (rt, tags) in specs {
            for (k, v) in tags.as_object()? {
                e = e.call("tag_for", &[string(rt), string(k), string(v.as_str()?)]);
            }
        }
    }
    e.tags(i)
}
