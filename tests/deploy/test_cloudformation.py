"""AWS CloudFormation templates: cfn-lint clean, and the architecture the issue asks for.

cfn-lint checks every resource against the CloudFormation resource schemas offline (types,
required properties, allowed values, references, GetAtt attributes, IAM policy syntax). The tests
below check what a schema cannot: scaling bounds, least privilege, who reaches the data, alarms.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from shopstream.config import Settings
from tests.deploy import helpers as h

TEMPLATES = h.aws_templates()


def resources(name: str, kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in h.cfn(name)["Resources"].items() if v["Type"] == kind}


def lint(*paths: Path) -> tuple[int, str]:
    """One cfn-lint run over several templates (its start-up is most of its time)."""
    result = h.run([h.tool("cfn-lint"), "--format", "parseable", *map(str, paths)])
    return result.returncode, result.stdout + result.stderr


@cache
def lint_all() -> tuple[int, str]:
    return lint(*TEMPLATES)


def test_the_templates_are_all_there() -> None:
    names = {p.name for p in TEMPLATES}
    assert {"network.yaml", "data.yaml", "ecr.yaml", "ecs.yaml", "eks.yaml"} <= names


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_cfn_lint_passes(template: Path) -> None:
    _code, output = lint_all()
    findings = [line for line in output.splitlines() if line.startswith(str(template))]
    assert not findings, "\n".join(findings)


def test_cfn_lint_passes_as_a_whole() -> None:
    code, output = lint_all()
    assert code == 0, output


def test_cfn_lint_fails_broken_templates(tmp_path: Path) -> None:
    text = (h.AWS / "ecs.yaml").read_text()
    typo = tmp_path / "typo.yaml"
    typo.write_text(text.replace("DesiredCount:", "DesiredCnt:", 1))
    dangling = tmp_path / "dangling.yaml"
    dangling.write_text(text.replace("!GetAtt TaskRole.Arn", "!GetAtt MissingRole.Arn", 1))
    code, output = lint(typo, dangling)
    assert code != 0
    assert any(line.startswith(str(typo)) and "DesiredCnt" in line for line in output.splitlines())
    assert any(
        line.startswith(str(dangling)) and "MissingRole" in line for line in output.splitlines()
    )


def test_network_spans_two_availability_zones() -> None:
    subnets = resources("network.yaml", "AWS::EC2::Subnet")
    zones = {str(s["Properties"]["AvailabilityZone"]["Fn::Select"][0]) for s in subnets.values()}
    assert zones == {"0", "1"}
    assert len(subnets) == 4  # public and private in each zone


def test_only_the_services_reach_the_database_and_kafka() -> None:
    groups = resources("data.yaml", "AWS::EC2::SecurityGroup")
    for name in ("DbSecurityGroup", "KafkaSecurityGroup"):
        for rule in groups[name]["Properties"]["SecurityGroupIngress"]:
            assert "CidrIp" not in rule, f"{name} admits an address range"
            source = rule["SourceSecurityGroupId"]["Fn::ImportValue"]["Fn::Sub"]
            assert source.endswith("-ServiceSecurityGroup")
    db = resources("data.yaml", "AWS::RDS::DBInstance")["Database"]["Properties"]
    assert db["PubliclyAccessible"] is False and db["StorageEncrypted"] is True
    assert "IsMultiAz" in str(db["MultiAZ"])


def test_database_credentials_live_in_secrets_manager() -> None:
    secret = resources("data.yaml", "AWS::SecretsManager::Secret")["DbSecret"]["Properties"]
    assert secret["GenerateSecretString"]["GenerateStringKey"] == "password"
    db = resources("data.yaml", "AWS::RDS::DBInstance")["Database"]["Properties"]
    assert "{{resolve:secretsmanager:" in str(db["MasterUserPassword"])
    for task in resources("ecs.yaml", "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            plain = {e["Name"] for e in container["Environment"]}
            assert "SHOPSTREAM_POSTGRES_PASSWORD" not in plain
            (secret,) = container["Secrets"]
            assert secret["Name"] == "SHOPSTREAM_POSTGRES_PASSWORD"
            assert "DbSecretArn" in str(secret["ValueFrom"])


def test_kafka_parameters_broker_count_partitions_replication() -> None:
    params = h.cfn("data.yaml")["Parameters"]
    assert {"KafkaBrokerCount", "TopicPartitions", "TopicReplication", "MultiAz"} <= set(params)
    brokers = params["KafkaBrokerCount"]["AllowedValues"]
    assert all(int(b) % 2 == 0 for b in brokers), "brokers spread over the two zones"
    assert params["TopicReplication"]["Default"] <= min(int(b) for b in brokers)
    default_topics = Settings.from_env(
        {"SHOPSTREAM_TOPIC_PARTITIONS": params["TopicPartitions"]["Default"]}
    ).topics()
    assert default_topics == Settings().topics(), "the MSK default is the code's default"
    assert re.fullmatch(params["TopicPartitions"]["AllowedPattern"], Settings().topic_partitions)


def test_ecs_services_scale_on_cpu_requests_and_lag_within_parameters() -> None:
    template = h.cfn("ecs.yaml")
    params = template["Parameters"]
    targets = resources("ecs.yaml", "AWS::ApplicationAutoScaling::ScalableTarget")
    policies = resources("ecs.yaml", "AWS::ApplicationAutoScaling::ScalingPolicy")
    by_target: dict[str, list[dict[str, Any]]] = {}
    for policy in policies.values():
        ref = policy["Properties"]["ScalingTargetId"]["Ref"]
        by_target.setdefault(ref, []).append(policy["Properties"])
    partitions = Settings.from_env(
        {
            "SHOPSTREAM_TOPIC_PARTITIONS": h.cfn("data.yaml")["Parameters"]["TopicPartitions"][
                "Default"
            ]
        }
    ).topics()
    for service in ("Product", "Order", "ProductConsumer", "OrderConsumer"):
        target = targets[f"{service}ScalableTarget"]["Properties"]
        low, high = target["MinCapacity"]["Ref"], target["MaxCapacity"]["Ref"]
        assert {low, high} <= set(params), "min and max are parameters"
        assert params[low]["Default"] <= params[high]["Default"]
        kinds = []
        for policy in by_target[f"{service}ScalableTarget"]:
            config = policy["TargetTrackingScalingPolicyConfiguration"]
            assert policy["PolicyType"] == "TargetTrackingScaling"
            if "PredefinedMetricSpecification" in config:
                kinds.append(config["PredefinedMetricSpecification"]["PredefinedMetricType"])
            else:
                metrics = config["CustomizedMetricSpecification"]["Metrics"]
                names = [
                    m["MetricStat"]["Metric"]["MetricName"] for m in metrics if "MetricStat" in m
                ]
                kinds.append("+".join(names))
        if service in ("Product", "Order"):
            assert sorted(kinds) == ["ALBRequestCountPerTarget", "ECSServiceAverageCPUUtilization"]
        else:
            assert kinds == ["ConsumerLag+RunningTaskCount"]
            role = "product-consumer" if service == "ProductConsumer" else "order-consumer"
            _, read = h.CONSUMER_GROUPS[role]
            assert params[high]["Default"] <= max(partitions[t] for t in read)


def test_relays_never_run_twice_and_apis_sit_behind_the_load_balancer() -> None:
    services = resources("ecs.yaml", "AWS::ECS::Service")
    for name, svc in services.items():
        props = svc["Properties"]
        deploy = props["DeploymentConfiguration"]
        assert deploy["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
        if "Relay" in name:
            assert props["DesiredCount"] == 1
            assert (deploy["MinimumHealthyPercent"], deploy["MaximumPercent"]) == (0, 100)
        assert props["NetworkConfiguration"]["AwsvpcConfiguration"]["AssignPublicIp"] == "DISABLED"
        assert ("LoadBalancers" in props) == (props["ServiceName"] in h.HTTP_PORTS)


def test_every_task_migrates_before_its_service_starts() -> None:
    for name, task in resources("ecs.yaml", "AWS::ECS::TaskDefinition").items():
        containers = {c["Name"]: c for c in task["Properties"]["ContainerDefinitions"]}
        migrate = containers.pop("migrate")
        assert migrate["Essential"] is False and migrate["Command"] == ["migrate"]
        ((_, main),) = containers.items()
        assert main["DependsOn"] == [{"ContainerName": "migrate", "Condition": "SUCCESS"}], name
        assert main["ReadonlyRootFilesystem"] is True


def test_task_roles_are_least_privilege() -> None:
    roles = resources("ecs.yaml", "AWS::IAM::Role")
    task_role = roles["TaskRole"]["Properties"]
    assert "Policies" not in task_role and "ManagedPolicyArns" not in task_role
    execution = roles["TaskExecutionRole"]["Properties"]
    assert "ManagedPolicyArns" not in execution
    for policy in execution["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = (
                statement["Action"]
                if isinstance(statement["Action"], list)
                else [statement["Action"]]
            )
            assert not any(a == "*" or a.endswith(":*") for a in actions)
            if statement["Resource"] == "*":
                assert actions == ["ecr:GetAuthorizationToken"], "only ECR login has no resource"
    secret_statements = [
        s
        for p in execution["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s["Action"] == "secretsmanager:GetSecretValue"
    ]
    assert len(secret_statements) == 1
    assert "DbSecretArn" in str(secret_statements[0]["Resource"])


def test_alarms_cover_latency_errors_lag_and_outbox_age() -> None:
    alarms = resources("ecs.yaml", "AWS::CloudWatch::Alarm")
    text = str(alarms)
    assert sum(a["Properties"].get("ExtendedStatistic") == "p99" for a in alarms.values()) == 2
    assert "HTTPCode_Target_5XX_Count" in text and "RequestCount" in text
    assert text.count("'ConsumerLag'") >= 2 and text.count("'OutboxOldestAgeSeconds'") >= 2
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}]
    assert resources("ecs.yaml", "AWS::CloudWatch::Dashboard")
    assert len(resources("ecs.yaml", "AWS::Logs::LogGroup")) == len(h.APP_ROLES)


def test_services_log_metrics_in_the_namespace_the_alarms_read() -> None:
    for task in resources("ecs.yaml", "AWS::ECS::TaskDefinition").values():
        for container in task["Properties"]["ContainerDefinitions"]:
            env = {e["Name"]: e["Value"] for e in container["Environment"]}
            assert env["SHOPSTREAM_AWS_EMF_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    custom = [
        a["Properties"]
        for a in resources("ecs.yaml", "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") in ("ConsumerLag", "OutboxOldestAgeSeconds")
    ]
    assert len(custom) == 4
    assert all(a["Namespace"] == {"Ref": "MetricsNamespace"} for a in custom)


def test_eks_cluster_and_nodes() -> None:
    nodegroup = resources("eks.yaml", "AWS::EKS::Nodegroup")["NodeGroup"]["Properties"]
    scaling = nodegroup["ScalingConfig"]
    assert {v["Ref"] for v in scaling.values()} == {"NodeMinSize", "NodeDesiredSize", "NodeMaxSize"}
    addons = resources("eks.yaml", "AWS::EKS::Addon")
    cni = addons["VpcCniAddon"]["Properties"]
    assert '"enableNetworkPolicy": "true"' in cni["ConfigurationValues"], "NetworkPolicies enforced"
    template = resources("eks.yaml", "AWS::EC2::LaunchTemplate")["NodeLaunchTemplate"]
    groups = str(template["Properties"]["LaunchTemplateData"]["SecurityGroupIds"])
    assert "ServiceSecurityGroup" in groups, "nodes must be admitted by RDS and MSK"


def test_readme_documents_every_parameter() -> None:
    readme = (h.AWS / "README.md").read_text()
    for template in TEMPLATES:
        for parameter in h.cfn(template.name).get("Parameters", {}):
            assert f"`{parameter}`" in readme, f"aws/README.md does not explain {parameter}"
