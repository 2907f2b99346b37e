"""Terraform: formatting, validation of every root, plans of both environments and
a real apply + destroy of a small dev environment against moto's server."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import boto3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.deploy import chains
from tests.deploy.manifests import ROOT, render

from .helpers import TERRAFORM_DIR, copy_terraform_tree, run, terraform_init, venv_tool

pytestmark = pytest.mark.infra

ROOTS = ["terraform", "terraform/bootstrap"]
REGION = "ap-northeast-2"
DOMAIN = "eco2.example.com"

# Services the root and its modules call. CloudFront is listed so a stray
# CloudFront call in the apply test would hit moto instead of AWS; the apply
# test switches CloudFront off because moto does not emulate it fully.
MOTO_SERVICES = ("acm", "cloudfront", "dynamodb", "ec2", "iam", "kms", "route53", "s3", "ssm", "sts")


def moto_override(url: str) -> str:
    """An override file (Terraform's own mechanism) that swaps the S3 backend
    for local state and points both provider configurations at moto."""
    endpoints = "\n".join(f'    {svc} = "{url}"' for svc in MOTO_SERVICES)
    provider = """
provider "aws" {{
  {alias}region                      = {region}
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true
  # Fail fast: an emulator error is not going to heal with 25 retries.
  max_retries = 1
  endpoints {{
{endpoints}
  }}
}}
"""
    return (
        'terraform {\n  backend "local" {}\n}\n'
        + provider.format(alias="", region="var.aws_region", endpoints=endpoints)
        + provider.format(alias='alias = "us_east_1"\n  ', region='"us-east-1"', endpoints=endpoints)
    )


# ---------------------------------------------------------------------------
# fmt / validate
# ---------------------------------------------------------------------------


def test_terraform_fmt_is_clean(terraform_bin: str, terraform_env: dict[str, str]) -> None:
    proc = run(
        [terraform_bin, "fmt", "-check", "-recursive", "-diff", "-no-color", str(TERRAFORM_DIR)],
        env=terraform_env,
        check=False,
    )
    assert proc.returncode == 0, f"terraform fmt would change files:\n{proc.stdout}"


@pytest.mark.parametrize("root", ROOTS)
def test_terraform_validate(root: str, tmp_path: Path, terraform_bin: str, terraform_env: dict[str, str]) -> None:
    tree = copy_terraform_tree(tmp_path)
    workdir = tree.parent / root
    terraform_init(terraform_bin, workdir, terraform_env, backend=False)
    proc = run([terraform_bin, "validate", "-json", "-no-color"], cwd=workdir, env=terraform_env, check=False)
    result = json.loads(proc.stdout)
    assert result["valid"], json.dumps(result["diagnostics"], indent=2)
    assert result["warning_count"] == 0, json.dumps(result["diagnostics"], indent=2)


def test_every_module_has_typed_described_variables_and_outputs() -> None:
    # `terraform validate` accepts untyped, undocumented variables; the
    # modules' contract is that callers never have to read main.tf.
    problems = []
    for module in sorted((TERRAFORM_DIR / "modules").iterdir()):
        variables = (module / "variables.tf").read_text()
        blocks = variables.split('variable "')[1:]
        assert blocks, f"{module.name} declares no variables"
        for block in blocks:
            name = block.split('"', 1)[0]
            if "description =" not in block or "type " not in block:
                problems.append(f"{module.name}.{name}")
        assert "output " in (module / "outputs.tf").read_text(), f"{module.name} has no outputs"
        assert 'version = "~> 5.100"' in (module / "versions.tf").read_text(), f"{module.name} unpinned"
    assert not problems, f"variables without type/description: {problems}"


def test_backend_configured_per_environment() -> None:
    for env in ("dev", "prod"):
        hcl = (TERRAFORM_DIR / "backend" / f"{env}.hcl").read_text()
        assert f'bucket         = "eco2-terraform-state-{env}"' in hcl
        assert "dynamodb_table" in hcl
        assert "encrypt        = true" in hcl
        assert (TERRAFORM_DIR / "env" / f"{env}.tfvars").is_file()
    assert 'backend "s3" {}' in (TERRAFORM_DIR / "versions.tf").read_text()


# ---------------------------------------------------------------------------
# moto-backed plans and apply
# ---------------------------------------------------------------------------


def _client(service: str, url: str, region: str = REGION) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture(scope="module")
def moto_aws(moto_url: str) -> dict[str, str]:
    """The pre-existing things the root looks up rather than creates."""
    route53 = _client("route53", moto_url, "us-east-1")
    zones = route53.list_hosted_zones_by_name(DNSName=DOMAIN)["HostedZones"]
    if not any(z["Name"] == f"{DOMAIN}." for z in zones):
        route53.create_hosted_zone(Name=DOMAIN, CallerReference="eco2-infra-tests")
    # moto's image catalogue has no Ubuntu 22.04, so the AMI lookup (a data
    # source filtered on Canonical's jammy images) is bypassed with ami_id.
    images = _client("ec2", moto_url).describe_images(Owners=["099720109477"])["Images"]
    assert images, "moto ships no Canonical images to stand in for Ubuntu"
    return {"url": moto_url, "ami_id": images[0]["ImageId"]}


@pytest.fixture(scope="module")
def moto_workdir(
    tmp_path_factory: pytest.TempPathFactory,
    moto_aws: dict[str, str],
    terraform_bin: str,
    terraform_env: dict[str, str],
) -> Path:
    tree = copy_terraform_tree(tmp_path_factory.mktemp("tf-moto"))
    (tree / "zz_moto_override.tf").write_text(moto_override(moto_aws["url"]))
    terraform_init(terraform_bin, tree, terraform_env, backend=True)
    for env in ("dev", "prod"):
        run([terraform_bin, "workspace", "new", env], cwd=tree, env=terraform_env)
    return tree


def _plan(workdir: Path, terraform_bin: str, env: dict[str, str], environment: str, extra: list[str]) -> dict[str, Any]:
    run([terraform_bin, "workspace", "select", environment], cwd=workdir, env=env)
    run(
        [
            terraform_bin,
            "plan",
            "-input=false",
            "-lock=false",
            "-no-color",
            "-out=plan.bin",
            f"-var-file=env/{environment}.tfvars",
            *extra,
        ],
        cwd=workdir,
        env=env,
    )
    shown = run([terraform_bin, "show", "-json", "plan.bin"], cwd=workdir, env=env)
    return json.loads(shown.stdout)


def _creates(plan: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [
        rc["change"]["after"]
        for rc in plan["resource_changes"]
        if rc["type"] == rtype and "create" in rc["change"]["actions"]
    ]


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_plan_environment_tfvars(
    environment: str,
    moto_workdir: Path,
    moto_aws: dict[str, str],
    terraform_bin: str,
    terraform_env: dict[str, str],
) -> None:
    """Plans each committed tfvars with CloudFront on: covers, at plan level, what
    the apply test has to switch off (CloudFront, OAC, its certificate, IPIP rules)."""
    plan = _plan(moto_workdir, terraform_bin, terraform_env, environment, [f"-var=ami_id={moto_aws['ami_id']}"])

    instances = _creates(plan, "aws_instance")
    roles = Counter(i["tags"]["Role"] for i in instances)
    assert roles.pop("bastion") == 1
    assert sum(roles.values()) == (14 if environment == "dev" else 20), roles
    assert roles["control-plane"] == 1
    assert roles["api"] == 4
    for group in ("worker_storage", "worker_ai", "postgresql", "redis", "rabbitmq", "monitoring", "ingress"):
        assert roles[group] >= 1, f"no {group} node"
    _assert_data_store_replicas_fit(environment, roles)
    assert all(not i["source_dest_check"] for i in instances if i["tags"]["Role"] != "bastion")

    nat = _creates(plan, "aws_nat_gateway")
    assert len(nat) == (1 if environment == "dev" else 3)

    [dist] = _creates(plan, "aws_cloudfront_distribution")
    assert dist["default_cache_behavior"][0]["viewer_protocol_policy"] == "https-only"
    assert dist["aliases"] == [f"images.{environment}.{DOMAIN}"]
    [oac] = _creates(plan, "aws_cloudfront_origin_access_control")
    assert (oac["signing_behavior"], oac["signing_protocol"]) == ("always", "sigv4")
    assert len(_creates(plan, "aws_acm_certificate")) == 2  # regional ALB cert + us-east-1 CloudFront cert

    rules = _creates(plan, "aws_vpc_security_group_ingress_rule")
    by_port = Counter((r["ip_protocol"], r["from_port"]) for r in rules)
    # node mesh = {cp, workers} x {cp, workers}: four rules per port
    assert by_port[("tcp", 179)] == 4
    assert by_port[("tcp", 5473)] == 4
    assert by_port[("4", None)] == 4  # IP-in-IP: the rule moto cannot store
    _assert_calico_traffic_allowed(rules)
    nodeport = [r for r in rules if r["from_port"] == 30000]
    assert len(nodeport) == 1
    assert nodeport[0]["to_port"] == 32767

    ssm = _creates(plan, "aws_ssm_parameter")
    assert all(p["type"] == "SecureString" for p in ssm)
    # The chain: exactly the parameters the environment's ExternalSecrets read.
    rendered = {
        f"workloads/secrets/external-secrets/{environment}": render(
            ROOT / f"workloads/secrets/external-secrets/{environment}"
        )
    }
    assert {p["name"] for p in ssm} == chains.remote_keys(rendered, environment)

    [cdn] = [o for o in plan["planned_values"]["outputs"].items() if o[0] == "images_public_base_url"]
    assert cdn[1]["value"] == f"https://images.{environment}.{DOMAIN}"  # per environment: aliases are unique
    buckets = {b["bucket"] for b in _creates(plan, "aws_s3_bucket")}
    assert f"eco2-{environment}-pg-backups" in buckets
    [versioning] = list(_creates(plan, "aws_s3_bucket_versioning"))
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"


def _assert_data_store_replicas_fit(environment: str, roles: Counter[str]) -> None:
    """Data stores with required pod anti-affinity need one node per replica (platform/cr/<env>)."""
    for obj in render(ROOT / f"platform/cr/{environment}"):
        spec = obj.get("spec", {})
        required = spec.get("affinity", {}).get(
            "podAntiAffinityType"
        ) == "required" or "requiredDuringSchedulingIgnoredDuringExecution" in str(
            spec.get("affinity", {}).get("podAntiAffinity", {})
        )
        if not required:
            continue
        replicas = spec.get("instances") or spec.get("clusterSize") or spec.get("replicas")
        group = {
            "Cluster": "postgresql",
            "RedisReplication": "redis",
            "RedisSentinel": "redis",
            "RabbitmqCluster": "rabbitmq",
        }[obj["kind"]]
        assert roles[group] >= replicas, (
            f"{obj['kind']}/{obj['metadata']['name']}: {replicas} replicas, {roles[group]} nodes"
        )


def _assert_calico_traffic_allowed(rules: list[dict[str, Any]]) -> None:
    """The security groups pass what Calico sends between nodes (ansible/roles/cni)."""
    template = (ROOT / "ansible/roles/cni/templates/calico-installation.yaml.j2").read_text()
    [line] = [line for line in template.splitlines() if line.strip().startswith("encapsulation:")]
    if "CrossSubnet" in line:
        # Inside a subnet pods talk with their own addresses: the nodes must accept the pod CIDR.
        assert any(r.get("cidr_ipv4") == "192.168.0.0/16" for r in rules), "CrossSubnet needs a pod-CIDR rule"
    else:
        assert line.strip() == "encapsulation: {{ cni_encapsulation }}", line
        mesh = [r for r in rules if r["ip_protocol"] == "4"]
        assert len(mesh) == 4, "IP-in-IP between every pair of node groups, both ways"


def test_workspace_guard_refuses_mismatched_environment(
    moto_workdir: Path, moto_aws: dict[str, str], terraform_bin: str, terraform_env: dict[str, str]
) -> None:
    run([terraform_bin, "workspace", "select", "dev"], cwd=moto_workdir, env=terraform_env)
    # -target keeps the plan to the guard itself (no data sources, no modules).
    proc = run(
        [
            terraform_bin,
            "plan",
            "-target=terraform_data.workspace_guard",
            "-input=false",
            "-lock=false",
            "-no-color",
            "-var-file=env/prod.tfvars",
            f"-var=ami_id={moto_aws['ami_id']}",
        ],
        cwd=moto_workdir,
        env=terraform_env,
        check=False,
    )
    assert proc.returncode != 0
    assert "does not match environment 'prod'" in proc.stderr


def _ssh_public_key() -> str:
    # moto parses imported key material, so it has to be a real key.
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()


def _test_tfvars(ami_id: str) -> str:
    return f"""
environment          = "dev"
domain_name          = "{DOMAIN}"
admin_cidrs          = ["198.51.100.0/24"]
ssh_public_key       = "{_ssh_public_key()} infra-test"
ami_id               = "{ami_id}"
images_bucket_name   = "eco2-infra-test-images"
oidc_bucket_name     = "eco2-infra-test-oidc"
# The dev manifests' name (platform/cr/dev), so the backup chain is checked against what was applied.
backups_bucket_name  = "eco2-dev-pg-backups"
backups_force_destroy = true
cors_allowed_origins = ["https://dev.{DOMAIN}", "http://localhost:5173"]
images_force_destroy = true
# Not emulated by moto; covered by validate and test_plan_environment_tfvars.
enable_cloudfront    = false
calico_encapsulation = "VXLAN"
node_groups = {{
  api = {{
    count         = 1
    instance_type = "t3.medium"
    labels        = {{ "eco2.io/role" = "api" }}
  }}
  postgresql = {{
    count         = 1
    instance_type = "t3.medium"
    labels        = {{ "eco2.io/role" = "data", "eco2.io/data" = "postgresql" }}
    taints        = [{{ key = "eco2.io/data", value = "postgresql", effect = "NoSchedule" }}]
  }}
}}
"""


def test_apply_and_destroy_dev_against_moto(
    tmp_path_factory: pytest.TempPathFactory,
    moto_aws: dict[str, str],
    terraform_bin: str,
    terraform_env: dict[str, str],
) -> None:
    url = moto_aws["url"]
    tree = copy_terraform_tree(tmp_path_factory.mktemp("tf-apply"))
    (tree / "zz_moto_override.tf").write_text(moto_override(url))
    (tree / "moto.tfvars").write_text(_test_tfvars(moto_aws["ami_id"]))
    terraform_init(terraform_bin, tree, terraform_env, backend=True)
    run([terraform_bin, "workspace", "new", "dev"], cwd=tree, env=terraform_env)

    applied = False
    try:
        run(
            [terraform_bin, "apply", "-input=false", "-auto-approve", "-no-color", "-var-file=moto.tfvars"],
            cwd=tree,
            env=terraform_env,
            timeout=900,
        )
        applied = True
        outputs = json.loads(run([terraform_bin, "output", "-json"], cwd=tree, env=terraform_env).stdout)
        _assert_applied_resources(url, outputs)
        _assert_inventory_output(tree, terraform_bin, terraform_env, tmp_path_factory.mktemp("inventory"))
    finally:
        if applied or (tree / "terraform.tfstate.d").exists():
            run(
                [
                    terraform_bin,
                    "destroy",
                    "-input=false",
                    "-auto-approve",
                    "-no-color",
                    "-var-file=moto.tfvars",
                ],
                cwd=tree,
                env=terraform_env,
                timeout=900,
            )

    ec2 = _client("ec2", url)
    live = [
        i
        for r in ec2.describe_instances()["Reservations"]
        for i in r["Instances"]
        if i["State"]["Name"] not in ("terminated", "shutting-down")
        and any(t["Key"] == "Environment" and t["Value"] == "dev" for t in i.get("Tags", []))
    ]
    assert not live, "instances survived terraform destroy"
    assert not ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["eco2-dev"]}])["Vpcs"]
    assert "eco2-infra-test-images" not in [b["Name"] for b in _client("s3", url).list_buckets()["Buckets"]]


def _assert_applied_resources(url: str, outputs: dict[str, Any]) -> None:
    ec2 = _client("ec2", url)
    instances = [
        i
        for r in ec2.describe_instances(
            Filters=[
                {"Name": "tag:Environment", "Values": ["dev"]},
                {"Name": "instance-state-name", "Values": ["pending", "running"]},
            ]
        )["Reservations"]
        for i in r["Instances"]
    ]
    roles = sorted(next(t["Value"] for t in i["Tags"] if t["Key"] == "Role") for i in instances)
    assert roles == ["api", "bastion", "control-plane", "postgresql"]

    vpc_id = outputs["vpc_id"]["value"]
    groups = {
        g["GroupName"]: g
        for g in ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["SecurityGroups"]
    }
    workers = groups["eco2-dev-workers"]
    alb_sg = outputs["alb_security_group_id"]["value"]
    ports = {(p["IpProtocol"], p.get("FromPort")) for p in workers["IpPermissions"]}
    assert {("tcp", 179), ("tcp", 5473), ("tcp", 10250), ("udp", 4789)} <= ports
    nodeport = [p for p in workers["IpPermissions"] if p.get("FromPort") == 30000]
    assert [g["GroupId"] for p in nodeport for g in p["UserIdGroupPairs"]] == [alb_sg]
    assert not any(p.get("FromPort") == 30000 and p["IpRanges"] for p in workers["IpPermissions"])

    s3 = _client("s3", url)
    bucket = outputs["images_bucket"]["value"]
    [cors] = s3.get_bucket_cors(Bucket=bucket)["CORSRules"]
    assert "PUT" in cors["AllowedMethods"]
    assert cors["AllowedHeaders"] == ["Content-Type"]
    assert "http://localhost:5173" in cors["AllowedOrigins"]
    _assert_browser_upload_allowed(url, bucket, cors)
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert set(rules) == {"tier-then-expire", "expire-incoming"}
    rule = rules["tier-then-expire"]
    assert rule["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert rule["Expiration"]["Days"] == 90
    assert rules["expire-incoming"]["Expiration"]["Days"] == 2
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert all(block.values())

    ssm = _client("ssm", url)
    pages = ssm.get_paginator("get_parameters_by_path").paginate(Path="/eco2/dev", Recursive=True)
    params = [p for page in pages for p in page["Parameters"]]
    assert {p["Type"] for p in params} == {"SecureString"}
    assert "/eco2/dev/auth/jwt-private-key" in {p["Name"] for p in params}

    iam = _client("iam", url)
    arns = outputs["irsa_role_arns"]["value"]
    assert set(arns) == set(chains.irsa_trust())  # the roles the manifests' identities name (tests/deploy)
    _assert_backup_chain(iam, s3)
    _assert_images_role(iam, bucket)
    trust = iam.get_role(RoleName="eco2-dev-external-secrets")["Role"]["AssumeRolePolicyDocument"]
    cond = json.dumps(trust)
    assert "system:serviceaccount:external-secrets:external-secrets" in cond
    assert "sts:AssumeRoleWithWebIdentity" in cond
    assert iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
    attached = iam.list_attached_role_policies(RoleName="eco2-dev-ebs-csi-driver")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["AmazonEBSCSIDriverPolicy"]

    route53 = _client("route53", url, "us-east-1")
    zone_id = route53.list_hosted_zones_by_name(DNSName=DOMAIN)["HostedZones"][0]["Id"]
    names = {r["Name"] for r in route53.list_resource_record_sets(HostedZoneId=zone_id)["ResourceRecordSets"]}
    assert f"k8s.dev.{DOMAIN}." in names
    assert f"bastion.dev.{DOMAIN}." in names

    acm = _client("acm", url)
    cert = acm.describe_certificate(CertificateArn=outputs["certificate_arn"]["value"])["Certificate"]
    assert cert["DomainName"] == f"dev.{DOMAIN}"
    assert f"*.dev.{DOMAIN}" in cert["SubjectAlternativeNames"]
    # CloudFront off: the output is null, and terraform leaves null outputs out.
    assert outputs.get("images_public_base_url", {}).get("value") is None


def _assert_browser_upload_allowed(url: str, bucket: str, cors: dict[str, Any]) -> None:
    """The bucket's CORS rule lets a client origin send what the code's presigner signs (issue 11)."""
    import asyncio
    from urllib.parse import parse_qs, urlsplit

    import httpx

    from services.common.blobs import BlobSettings, S3BlobStore

    settings = BlobSettings(
        s3_bucket=bucket, s3_endpoint_url=url, s3_access_key_id="testing", s3_secret_access_key="testing"
    )
    store = S3BlobStore(settings, "https://images.example")
    presigned = asyncio.run(store.presign_put("scan/" + "a" * 32 + ".jpg", "image/jpeg", 300))
    query = parse_qs(urlsplit(presigned).query)
    signed = {h for h in query["X-Amz-SignedHeaders"][0].split(";") if h != "host"}
    allowed = {h.lower() for h in cors["AllowedHeaders"]}
    assert signed <= allowed or "*" in allowed, f"the presigned PUT needs headers {signed - allowed} the bucket refuses"
    assert "PUT" in cors["AllowedMethods"]
    origin = cors["AllowedOrigins"][0]
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": ",".join(sorted(signed)),
    }
    preflight = httpx.options(presigned, headers=headers)
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    put = httpx.put(presigned, content=b"\xff\xd8\xff", headers={"Origin": origin, "Content-Type": "image/jpeg"})
    assert put.status_code == 200, put.text


def _assert_images_role(iam: Any, bucket: str) -> None:
    """The images bucket is reachable through the images IRSA role alone, never the nodes' roles
    (every pod can reach the instance metadata service)."""
    trust = json.dumps(iam.get_role(RoleName="eco2-dev-images")["Role"]["AssumeRolePolicyDocument"])
    for account in chains.irsa_trust()["images"]:
        assert f"system:serviceaccount:{account.replace('/', ':')}" in trust
    policy = json.dumps(iam.get_role_policy(RoleName="eco2-dev-images", PolicyName="images-bucket")["PolicyDocument"])
    assert f"arn:aws:s3:::{bucket}/*" in policy
    for node in ("eco2-dev-worker", "eco2-dev-control-plane"):
        assert iam.list_role_policies(RoleName=node)["PolicyNames"] == [], f"{node} has inline rights"


def _assert_backup_chain(iam: Any, s3: Any) -> None:
    """bucket <-> credentials <-> Cluster spec, against what Terraform created."""
    (cluster,) = [o for o in render(ROOT / "platform/cr/dev") if o["kind"] == "Cluster"]
    bucket = cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"].removeprefix("s3://").strip("/")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    role_arn = {e["name"]: e["value"] for e in cluster["spec"]["env"]}["AWS_ROLE_ARN"]
    role = role_arn.rsplit("/", 1)[-1]
    trust = json.dumps(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
    namespace, name = cluster["metadata"]["namespace"], cluster["metadata"]["name"]
    assert f"system:serviceaccount:{namespace}:{name}" in trust  # CloudNativePG's SA is the cluster's name
    policy = json.dumps(iam.get_role_policy(RoleName=role, PolicyName="postgres-backup")["PolicyDocument"])
    assert f"arn:aws:s3:::{bucket}/*" in policy
    assert "s3:PutObject" in policy
    assert "s3:DeleteObject" in policy
    assert "images" not in policy, "the backup role reaches the backup bucket only"


def _assert_inventory_output(tree: Path, terraform_bin: str, env: dict[str, str], tmp: Path) -> None:
    """The rendered inventory is what Ansible reads: check it through ansible-inventory."""
    text = run([terraform_bin, "output", "-raw", "ansible_inventory"], cwd=tree, env=env).stdout
    inventory = tmp / "hosts.yml"
    inventory.write_text(text)
    listed = json.loads(run([venv_tool("ansible-inventory"), "-i", str(inventory), "--list"]).stdout)
    assert listed["control_plane"]["hosts"] == ["control-plane-1"]
    assert set(listed["workers"]["children"]) == {"api", "postgresql"}
    assert set(listed["k8s_cluster"]["children"]) == {"control_plane", "workers"}
    hostvars = listed["_meta"]["hostvars"]
    assert hostvars["postgresql-1"]["node_labels"] == {"eco2.io/role": "data", "eco2.io/data": "postgresql"}
    assert hostvars["postgresql-1"]["node_taints"] == [
        {"key": "eco2.io/data", "value": "postgresql", "effect": "NoSchedule"}
    ]
    assert hostvars["api-1"]["ansible_host"].startswith("10.20.")
    assert hostvars["api-1"]["eco2_calico_encapsulation"] == "VXLAN"
    assert re.fullmatch(r"aws:///ap-northeast-2[a-z]/i-[0-9a-f]+", hostvars["api-1"]["provider_id"])
    assert "ProxyJump=ubuntu@" in hostvars["api-1"]["ansible_ssh_common_args"]


def test_cloudfront_reads_only_the_verified_prefixes() -> None:
    """docs/api.md, images: a cdn_url is never served before verification. Client uploads land under
    ``incoming/`` (services/common/blobs.py) and the image service promotes verified bytes to
    ``<channel>/…``; CloudFront's only grant on the bucket (its OAC statement) names exactly the
    prefixes the service serves, so ``<cdn>/incoming/<key>`` is a 403 and nothing else reads it."""
    from services.common.blobs import INCOMING
    from services.image.service import SERVED_PREFIXES

    module = (TERRAFORM_DIR / "modules/s3-images/main.tf").read_text()
    policy = re.search(r'data "aws_iam_policy_document" "images" \{(.*?)\n\}\n', module, re.S)
    assert policy, "the images bucket policy document is gone"
    statements = re.findall(r"statement \{(.*?)\n  \}", policy.group(1), re.S)
    assert len(statements) == 1, "CloudFront's OAC statement is the bucket's only grant"
    (statement,) = statements
    assert re.search(r'actions\s*=\s*\["s3:GetObject"\]', statement)
    assert '"cloudfront.amazonaws.com"' in statement
    assert re.search(r'variable\s*=\s*"AWS:SourceArn"', statement), "only this distribution"
    listed = re.search(
        r"resources\s*=\s*\[for prefix in (\[[^\]]*\]) : \"\$\{aws_s3_bucket\.images\.arn\}/\$\{prefix\}/\*\"\]",
        statement,
    )
    assert listed, "resources must be the bucket's served prefixes, one ARN pattern per prefix"
    prefixes = json.loads(listed.group(1))
    assert set(prefixes) == set(SERVED_PREFIXES)
    assert INCOMING.rstrip("/") not in prefixes
    # No other grant, anywhere in the module, reads the whole bucket.
    assert not re.search(r'\$\{aws_s3_bucket\.images\.arn\}/\*"', module)
    # The distribution's one origin is the bucket, through that access control.
    distribution = re.search(r'resource "aws_cloudfront_distribution" "images" \{(.*?)\n\}\n', module, re.S)
    assert distribution
    assert distribution.group(1).count("origin {") == 1
    assert "origin_access_control_id" in distribution.group(1)
    # A read before verification is an error CloudFront must not cache past the promotion.
    errors = re.search(
        r'dynamic "custom_error_response" \{\s*for_each = toset\((\[[^\]]*\])\)(.*?)\n  \}', distribution.group(1), re.S
    )
    assert errors
    assert set(json.loads(errors.group(1))) == {403, 404}
    assert re.search(r"error_caching_min_ttl\s*=\s*0\b", errors.group(2))
