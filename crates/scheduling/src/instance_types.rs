//! The EC2 instance types spar's scheduling analysis knows: vCPUs, memory, local NVMe, the
//! EKS pod limit and the on-demand price of each, read once from `instance_types.csv`
//! (embedded at compile time, so the analysis needs no network and no AWS credentials).
//!
//! What it owns: the table ([`instance_types`], [`instance_type`]), its provenance
//! ([`SOURCE`], [`PRICE_SOURCE`]) and the attributes Karpenter derives from an instance
//! type's name ([`InstanceType::category`], [`InstanceType::generation`]).
//!
//! Rules kept here:
//! - Figures are nominal: `memory_mib` is the advertised memory (GiB * 1024), not what the
//!   kubelet reports as capacity (the kernel and firmware take some; Karpenter assumes 7.5%
//!   by default, `VM_MEMORY_OVERHEAD_PERCENT`). The allocatable arithmetic in
//!   [`crate::allocatable`] starts from these figures, so it is an
//!   upper bound on what a real node offers.
//! - `max_pods` is amazon-eks-ami's `eni-max-pods.txt` value (VPC CNI, one IPv4 address per
//!   pod, no prefix delegation): `ENIs * (IPv4 addresses per ENI - 1) + 2`.
//! - `local_nvme_gb` sums the instance-store NVMe disks in GB (decimal), as Karpenter's
//!   `karpenter.k8s.aws/instance-local-nvme` label does; 0 means none.
//! - The price is Karpenter's own static on-demand list for us-east-1 (Linux, USD per
//!   hour; [`PRICE_SOURCE`]), kept exactly as integer micro-dollars; a type missing from
//!   that list has `None`, never an estimate. It is what "cheapest" means to Karpenter:
//!   kubernetes-sigs/karpenter orders a NodeClaim's instance-type options by their cheapest
//!   compatible available offering (`InstanceTypes.OrderByPrice` in
//!   `pkg/cloudprovider/types.go`, applied by `NodeClaimTemplate.ToNodeClaim` and
//!   `Truncate`), and the AWS provider launches the cheapest 60 of them with one instant
//!   `CreateFleet` whose on-demand allocation strategy is `lowest-price` (`prioritized`,
//!   by price, only under node overlays; spot uses `price-capacity-optimized`), in
//!   `pkg/providers/instance/{instance,types}.go` at the commit [`PRICE_SOURCE`] names.
//!
//! Not modelled: spot prices, other regions and operating systems, reserved capacity,
//! GPUs and other accelerators, network bandwidth, ENI counts, EBS limits, bare-metal
//! sizes, and every family not in the CSV (an unknown name is `None`, never a guess).

use std::fmt;
use std::sync::OnceLock;

/// Where the table's figures come from, and when they were taken.
pub const SOURCE: &str = "AWS EC2 instance type specifications and awslabs/amazon-eks-ami \
                          nodeadm/internal/kubelet/eni-max-pods.txt, as of 2026-12-06";

/// Where [`InstanceType::on_demand_micro_usd_hour`] comes from: Karpenter's static price
/// list, the one it starts with and keeps when the AWS pricing API cannot be reached.
pub const PRICE_SOURCE: &str = "aws/karpenter-provider-aws \
                                pkg/providers/pricing/zz_generated.pricing_aws.go \
                                (InitialOnDemandPricesAWS, us-east-1) at commit \
                                1d927085dd81a9df9301e613f371dac5b4d16bfe, generated \
                                2026-07-20T13:44:30Z";

/// The embedded table; `#` lines are comments, the first other line is the header.
const TABLE: &str = include_str!("instance_types.csv");

/// A CPU architecture, spelled as the `kubernetes.io/arch` label spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    Amd64,
    Arm64,
}

impl Arch {
    /// The `kubernetes.io/arch` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One EC2 instance type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceType {
    /// `c6id.2xlarge`.
    pub name: &'static str,
    /// `c6id` (the part before the dot).
    pub family: &'static str,
    /// `2xlarge` (the part after the dot).
    pub size: &'static str,
    pub vcpu: u32,
    /// Nominal memory in MiB.
    pub memory_mib: u64,
    /// Instance-store NVMe in GB, summed over disks; 0 when there is none.
    pub local_nvme_gb: u64,
    /// The EKS AMI's `--max-pods` for this type (VPC CNI without prefix delegation).
    pub max_pods: u32,
    pub arch: Arch,
    /// The Linux on-demand price in us-east-1, in millionths of a US dollar per hour
    /// (`100800` is $0.1008/h), exactly as Karpenter's static price list gives it
    /// ([`PRICE_SOURCE`]); `None` when that list has no price for the type. Integer so that
    /// the type stays `Eq` and prices compare exactly; [`InstanceType::on_demand_usd_hour`]
    /// gives dollars.
    pub on_demand_micro_usd_hour: Option<u64>,
}

impl InstanceType {
    /// Karpenter's `karpenter.k8s.aws/instance-category`: the family's leading letters
    /// (`c` for `c6id`, `i` for `i4i`).
    pub fn category(&self) -> &'static str {
        let end = self
            .family
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(self.family.len());
        &self.family[..end]
    }

    /// Karpenter's `karpenter.k8s.aws/instance-generation`: the digits after the category
    /// (`6` for `c6id`); `None` when the family has none.
    pub fn generation(&self) -> Option<u32> {
        let rest = &self.family[self.category().len()..];
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        rest[..end].parse().ok()
    }

    /// The Linux on-demand price in us-east-1 in US dollars per hour (Karpenter's static
    /// list, [`PRICE_SOURCE`]); `None` when unknown.
    pub fn on_demand_usd_hour(&self) -> Option<f64> {
        self.on_demand_micro_usd_hour.map(|micro| micro as f64 / 1e6)
    }
}

/// A line of the table that does not parse; only the embedded table's tests see one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instance-type table line {line}: {message}")]
pub struct TableError {
    pub line: usize,
    pub message: String,
}

/// Every instance type in the table, in table order (parsed on first use).
pub fn instance_types() -> &'static [InstanceType] {
    static TYPES: OnceLock<Vec<InstanceType>> = OnceLock::new();
    // The table is compiled in and a test parses it, so a failure here is a build defect,
    // not an input error.
    TYPES.get_or_init(|| parse_table(TABLE).unwrap_or_else(|e| panic!("embedded {e}")))
}

/// The instance type called `name` (`c6id.2xlarge`), if the table has it.
pub fn instance_type(name: &str) -> Option<&'static InstanceType> {
    instance_types().iter().find(|t| t.name == name)
}

const HEADER: &str = "name,vcpu,memory_mib,local_nvme_gb,max_pods,arch,on_demand_usd_hour";

/// Reads a non-negative decimal of at most six fractional digits (`0.100800`) as exact
/// millionths; the empty cell is `None` (unknown). Anything else (a sign, an exponent, a
/// seventh decimal that micro-dollars cannot hold) is refused with the reason.
fn parse_micro(v: &str) -> Result<Option<u64>, String> {
    if v.is_empty() {
        return Ok(None);
    }
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (whole, frac) = match v.split_once('.') {
        None if digits(v) => (v, ""),
        Some((w, f)) if digits(w) && digits(f) => (w, f),
        _ => return Err(format!("`{v}` is not a decimal number like 0.1008")),
    };
    if frac.len() > 6 {
        return Err(format!("`{v}` has more than six decimals (micro-dollars)"));
    }
    let frac_micro = format!("{frac:0<6}").parse::<u64>().expect("six ASCII digits");
    whole
        .parse::<u64>()
        .ok()
        .and_then(|w| w.checked_mul(1_000_000))
        .and_then(|w| w.checked_add(frac_micro))
        .map(Some)
        .ok_or_else(|| format!("`{v}` is too large"))
}

/// Parses a table in `instance_types.csv`'s format.
pub(crate) fn parse_table(text: &'static str) -> Result<Vec<InstanceType>, TableError> {
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let row = raw.trim();
        if row.is_empty() || row.starts_with('#') {
            continue;
        }
        let err = |message: String| TableError { line, message };
        if !header_seen {
            if row != HEADER {
                return Err(err(format!("expected the header `{HEADER}`, found `{row}`")));
            }
            header_seen = true;
            continue;
        }
        let cols: Vec<&'static str> = row.split(',').map(str::trim).collect();
        let [name, vcpu, memory_mib, nvme, max_pods, arch, price] = cols[..] else {
            return Err(err(format!("expected 7 columns, found {}", cols.len())));
        };
        let Some((family, size)) = name.split_once('.') else {
            return Err(err(format!("`{name}` is not `family.size`")));
        };
        let num = |col: &str, v: &str| -> Result<u64, TableError> {
            v.parse::<u64>()
                .map_err(|_| err(format!("{col} `{v}` is not a whole number")))
        };
        let arch = match arch {
            "amd64" => Arch::Amd64,
            "arm64" => Arch::Arm64,
            other => return Err(err(format!("arch `{other}` is neither amd64 nor arm64"))),
        };
        let vcpu = u32::try_from(num("vcpu", vcpu)?).map_err(|_| err("vcpu too large".into()))?;
        let max_pods = u32::try_from(num("max_pods", max_pods)?).map_err(|_| err("max_pods too large".into()))?;
        if vcpu == 0 || max_pods == 0 {
            return Err(err("vcpu and max_pods must be positive".into()));
        }
        if rows.iter().any(|t: &InstanceType| t.name == name) {
            return Err(err(format!("`{name}` appears twice")));
        }
        rows.push(InstanceType {
            name,
            family,
            size,
            vcpu,
            memory_mib: num("memory_mib", memory_mib)?,
            local_nvme_gb: num("local_nvme_gb", nvme)?,
            max_pods,
            arch,
            on_demand_micro_usd_hour: parse_micro(price).map_err(|m| err(format!("on_demand_usd_hour {m}")))?,
        });
    }
    if !header_seen {
        return Err(TableError {
            line: 0,
            message: "no header line".into(),
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `parse_table` borrows names for `'static`, as the embedded table lives that long.
    fn leak(text: String) -> &'static str {
        text.leak()
    }

    #[test]
    fn embedded_table_parses_and_holds_the_required_types() {
        let all = parse_table(TABLE).expect("embedded table parses");
        assert_eq!(all.len(), instance_types().len());
        for fam in ["c6id", "m6id", "r6id"] {
            for size in [
                "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge", "24xlarge", "32xlarge",
            ] {
                assert!(instance_type(&format!("{fam}.{size}")).is_some(), "{fam}.{size}");
            }
        }
        for fam in ["c7gd", "m7gd", "r7gd"] {
            for size in [
                "medium", "large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge",
            ] {
                let t = instance_type(&format!("{fam}.{size}")).unwrap_or_else(|| panic!("{fam}.{size}"));
                assert_eq!(t.arch, Arch::Arm64);
            }
        }
        for name in [
            "i4i.large",
            "i4i.32xlarge",
            "m7g.medium",
            "m7g.4xlarge",
            "c7g.large",
            "c7g.4xlarge",
            "m6i.large",
            "m6i.4xlarge",
            "m5.large",
            "t3.medium",
            "t4g.medium",
        ] {
            assert!(instance_type(name).is_some(), "{name}");
        }
    }

    #[test]
    fn figures_follow_the_stated_ratios() {
        for t in instance_types() {
            let gib = t.memory_mib / 1024;
            match t.family {
                "m6id" | "r6id" => {
                    let c = instance_type(&format!("c6id.{}", t.size)).expect("c6id peer");
                    let factor = if t.family == "m6id" { 2 } else { 4 };
                    assert_eq!(t.memory_mib, c.memory_mib * factor, "{}", t.name);
                    assert_eq!(
                        (t.vcpu, t.local_nvme_gb, t.max_pods),
                        (c.vcpu, c.local_nvme_gb, c.max_pods)
                    );
                }
                "c7gd" | "c7g" => assert_eq!(gib, 2 * u64::from(t.vcpu), "{}", t.name),
                "m7gd" | "m7g" | "m6i" | "m5" => assert_eq!(gib, 4 * u64::from(t.vcpu), "{}", t.name),
                "r7gd" => assert_eq!(gib, 8 * u64::from(t.vcpu), "{}", t.name),
                _ => {}
            }
        }
        let t = instance_type("c6id.2xlarge").expect("c6id.2xlarge");
        assert_eq!((t.vcpu, t.memory_mib, t.local_nvme_gb, t.max_pods), (8, 16384, 474, 58));
        let t = instance_type("i4i.16xlarge").expect("i4i.16xlarge");
        assert_eq!(
            (t.vcpu, t.memory_mib, t.local_nvme_gb, t.max_pods),
            (64, 512 * 1024, 15000, 737)
        );
        let t = instance_type("t4g.medium").expect("t4g.medium");
        assert_eq!((t.vcpu, t.memory_mib, t.max_pods, t.arch), (2, 4096, 17, Arch::Arm64));
    }

    #[test]
    fn karpenter_derived_attributes() {
        let t = instance_type("c6id.large").expect("c6id.large");
        assert_eq!(
            (t.family, t.size, t.category(), t.generation()),
            ("c6id", "large", "c", Some(6))
        );
        let t = instance_type("i4i.large").expect("i4i.large");
        assert_eq!((t.category(), t.generation()), ("i", Some(4)));
        assert_eq!(instance_type("c5.large"), None);
    }

    #[test]
    fn malformed_tables_are_rejected_with_the_line() {
        let e = parse_table(leak(format!("# c\n{HEADER}\nx.large,2,4096,0,29,sparc,0.1\n"))).expect_err("bad arch");
        assert_eq!(e.line, 3);
        assert!(e.message.contains("sparc"), "{e}");
        assert!(parse_table("name,vcpu\n").is_err());
        assert!(parse_table(leak(format!("{HEADER}\nnodot,2,1,0,1,amd64,0.1\n"))).is_err());
        // The table before prices (six columns) is refused, header and rows alike.
        assert!(parse_table("name,vcpu,memory_mib,local_nvme_gb,max_pods,arch\n").is_err());
        let e = parse_table(leak(format!("{HEADER}\nx.large,2,4096,0,29,amd64\n"))).expect_err("six columns");
        assert_eq!(e.line, 2);
        assert!(parse_table("").is_err());
    }

    #[test]
    fn a_malformed_price_is_an_error_naming_its_line() {
        for bad in [
            "$0.10",
            "-0.1",
            "0.1 USD",
            "1e-1",
            "0.1234567",
            ".5",
            "5.",
            "0.1.2",
            "abc",
            "99999999999999999",
        ] {
            let text = format!("# c\n{HEADER}\nx.large,2,4096,0,29,amd64,0.1\nx.xlarge,4,8192,0,58,amd64,{bad}\n");
            let Err(e) = parse_table(leak(text)) else {
                panic!("`{bad}` accepted");
            };
            assert_eq!(e.line, 4, "{bad}: {e}");
            assert!(e.message.contains("on_demand_usd_hour"), "{bad}: {e}");
            assert!(e.to_string().starts_with("instance-type table line 4:"), "{e}");
        }
    }

    #[test]
    fn prices_parse_exactly_and_empty_is_unknown() {
        let lines = ["a.large,2,4096,0,29,amd64,0.100800", "b.large,2,4096,0,29,amd64,"];
        let more = ["c.large,2,4096,0,29,amd64,12", "d.large,2,4096,0,29,amd64,10.982400"];
        let text = format!("{HEADER}\n{}\n{}\n", lines.join("\n"), more.join("\n"));
        let rows = parse_table(leak(text)).expect("parses");
        let micro: Vec<_> = rows.iter().map(|t| t.on_demand_micro_usd_hour).collect();
        assert_eq!(micro, [Some(100_800), None, Some(12_000_000), Some(10_982_400)]);
        assert_eq!(rows[0].on_demand_usd_hour(), Some(0.1008));
        assert_eq!(rows[1].on_demand_usd_hour(), None);
    }

    #[test]
    fn prices_are_karpenters_us_east_1_list() {
        // Copied from aws/karpenter-provider-aws pkg/providers/pricing/zz_generated.pricing_aws.go,
        // "us-east-1", at 1d927085dd81a9df9301e613f371dac5b4d16bfe (generated 2026-07-20).
        for (name, usd) in [
            ("c6id.large", "0.100800"),
            ("c6id.4xlarge", "0.806400"),
            ("m6id.32xlarge", "7.593600"),
            ("r6id.24xlarge", "7.257600"),
            ("c7gd.medium", "0.045400"),
            ("r7gd.16xlarge", "4.354600"),
            ("i4i.32xlarge", "10.982400"),
            ("m7g.large", "0.081600"),
            ("m5.large", "0.096000"),
            ("t3.medium", "0.041600"),
            ("t4g.medium", "0.033600"),
        ] {
            let t = instance_type(name).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(t.on_demand_micro_usd_hour, parse_micro(usd).expect("valid"), "{name}");
            assert_eq!(t.on_demand_usd_hour(), Some(usd.parse::<f64>().expect("f64")), "{name}");
        }
        // Karpenter's list prices a family linearly in its size, as AWS does.
        let large = instance_type("m6id.large").and_then(|t| t.on_demand_micro_usd_hour);
        let x32 = instance_type("m6id.32xlarge").and_then(|t| t.on_demand_micro_usd_hour);
        assert_eq!(large.map(|p| p * 64), x32);
    }

    #[test]
    fn every_type_has_a_price() {
        let unpriced: Vec<&str> = instance_types()
            .iter()
            .filter(|t| t.on_demand_micro_usd_hour.is_none())
            .map(|t| t.name)
            .collect();
        assert!(unpriced.is_empty(), "no on-demand price for {unpriced:?}");
        let free: Vec<&str> = instance_types()
            .iter()
            .filter(|t| t.on_demand_micro_usd_hour == Some(0))
            .map(|t| t.name)
            .collect();
        assert!(free.is_empty(), "a zero price for {free:?}");
    }
}
