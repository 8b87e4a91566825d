"""Stack configuration, read from the environment the template gives every function."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from firebreak.core.models import Mode, Playbook, TimeoutAction
from firebreak.core.waf import IPSET_CAPACITY

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# Each playbook's own mode parameter; "inherit" (or unset) leaves it to the stack's ResponseMode (Settings.mode_for).
PLAYBOOK_MODE_VARIABLES = {
    Playbook.BLOCK_IP: "BLOCK_IP_MODE",
    Playbook.CONTAIN_INSTANCE: "CONTAIN_INSTANCE_MODE",
    Playbook.REVOKE_CREDENTIALS: "REVOKE_CREDENTIALS_MODE",
    Playbook.PROTECT_BUCKET: "PROTECT_BUCKET_MODE",
    Playbook.CONTAIN_FUNCTION: "CONTAIN_FUNCTION_MODE",
    Playbook.CONTAIN_DATABASE: "CONTAIN_DATABASE_MODE",
    Playbook.CONTAIN_TASK: "CONTAIN_TASK_MODE",
}


@dataclass(frozen=True)
class Settings:
    incident_table: str
    responder_topic_arn: str
    blocked_ipv4_set_arn: str
    blocked_ipv6_set_arn: str
    response_mode: Mode
    playbook_modes: tuple[tuple[Playbook, Mode], ...]
    allow_list: tuple[IpNetwork, ...]
    max_addresses_per_incident: int
    trusted_product_companies: tuple[str, ...] = ("aws",)
    revoke_instance_role_sessions: bool = False
    release_state_machine_arn: str = ""
    chat_format: str = "none"
    write_back_guardduty: bool = False
    notify_on_start: bool = False
    event_bus_name: str = "default"
    breaker_table: str = ""
    max_containments_per_hour: int = 20
    max_blocked_addresses_per_hour: int = 375
    blocklist_table: str = ""
    block_ttl_hours: int = 0
    ipset_headroom: int = 0
    nacl_blocking: bool = False
    nacl_rules: tuple[int, int] = (71, 80)
    cloudfront_ipv4_set_arn: str = ""
    cloudfront_ipv6_set_arn: str = ""
    approval_table: str = ""
    approval_secret_arn: str = ""
    approval_window_seconds: int = 3600
    approval_on_timeout: TimeoutAction = TimeoutAction.DENY
    # contain-task: stop the task once it is isolated (its memory, and what runs in it, is lost).
    stop_task_after_isolation: bool = False
    # The stack's one IPSet writer (the blocklist table's stream) places the blocks; without it each step writes.
    ipset_writer: bool = False

    @property
    def ipset_limit(self) -> int:
        """Most addresses Firebreak lets one IPSet hold: WAF's limit less the headroom kept for people and feeds."""
        return IPSET_CAPACITY - self.ipset_headroom

    def ipset_arns(self, version: int) -> tuple[str, ...]:
        """The IPSets an address of this IP version goes into: the REGIONAL one, and the CLOUDFRONT one if enabled."""
        regional, cloudfront = (
            (self.blocked_ipv4_set_arn, self.cloudfront_ipv4_set_arn)
            if version == 4
            else (self.blocked_ipv6_set_arn, self.cloudfront_ipv6_set_arn)
        )
        return tuple(arn for arn in (regional, cloudfront) if arn)

    def mode_for(self, playbook: Playbook) -> Mode:
        """The playbook's own mode where one is set, else the stack's; but a playbook's approval never loosens a
        dry-run stack. Approval means "never without a person", dry-run "never at all": a deployer trialling the stack
        in dry-run expects nothing to change anywhere, even with ContainDatabaseMode's default. A playbook's explicit
        enforce still wins, so one playbook can run for real while the rest are trialled."""
        own = dict(self.playbook_modes).get(playbook)
        if own is None or (own is Mode.APPROVAL and self.response_mode is Mode.DRY_RUN):
            return self.response_mode
        return own

    @classmethod
    def from_env(cls) -> Settings:
        """Read per invocation, not at import: the local engine runs every function in one process."""
        env = os.environ
        return cls(
            incident_table=env.get("INCIDENT_TABLE_NAME", ""),
            responder_topic_arn=env.get("RESPONDER_TOPIC_ARN", ""),
            blocked_ipv4_set_arn=env.get("BLOCKED_IPV4_SET_ARN", ""),
            blocked_ipv6_set_arn=env.get("BLOCKED_IPV6_SET_ARN", ""),
            response_mode=Mode(env.get("RESPONSE_MODE", Mode.ENFORCE)),
            playbook_modes=tuple(
                (playbook, Mode(env[variable]))
                for playbook, variable in PLAYBOOK_MODE_VARIABLES.items()
                if env.get(variable, "inherit") != "inherit"
            ),
            allow_list=parse_cidrs(env.get("ALLOW_LIST_CIDRS", "")),
            max_addresses_per_incident=int(env.get("MAX_ADDRESSES_PER_INCIDENT", "50")),
            breaker_table=env.get("CIRCUIT_BREAKER_TABLE_NAME", ""),
            max_containments_per_hour=int(env.get("MAX_CONTAINMENTS_PER_HOUR", "20")),
            max_blocked_addresses_per_hour=int(env.get("MAX_BLOCKED_ADDRESSES_PER_HOUR", "375")),
            trusted_product_companies=tuple(
                part.strip() for part in env.get("TRUSTED_PRODUCT_COMPANIES", "aws").split(",") if part.strip()
            ),
            revoke_instance_role_sessions=env.get("REVOKE_INSTANCE_ROLE_SESSIONS", "false").lower() == "true",
            release_state_machine_arn=env.get("RELEASE_STATE_MACHINE_ARN", ""),
            chat_format=env.get("CHAT_NOTIFICATION_FORMAT", "none"),
            write_back_guardduty=env.get("WRITE_BACK_GUARDDUTY", "false").lower() == "true",
            notify_on_start=env.get("NOTIFY_ON_START", "false").lower() == "true",
            event_bus_name=env.get("INCIDENT_EVENT_BUS_NAME", "default"),
            blocklist_table=env.get("BLOCKLIST_TABLE_NAME", ""),
            block_ttl_hours=int(env.get("BLOCK_TTL_HOURS", "0")),
            ipset_headroom=int(env.get("IPSET_HEADROOM", "0")),
            nacl_blocking=env.get("NACL_BLOCKING", "false").lower() == "true",
            nacl_rules=parse_rule_range(env.get("NACL_RULE_RANGE", "71-80")),
            cloudfront_ipv4_set_arn=env.get("BLOCKED_CLOUDFRONT_IPV4_SET_ARN", ""),
            cloudfront_ipv6_set_arn=env.get("BLOCKED_CLOUDFRONT_IPV6_SET_ARN", ""),
            approval_table=env.get("APPROVAL_TABLE_NAME", ""),
            approval_secret_arn=env.get("APPROVAL_SECRET_ARN", ""),
            approval_window_seconds=window_seconds(env.get("APPROVAL_TIMEOUT_MINUTES", "60")),
            approval_on_timeout=TimeoutAction(env.get("APPROVAL_TIMEOUT_ACTION", TimeoutAction.DENY)),
            stop_task_after_isolation=env.get("STOP_TASK_AFTER_ISOLATION", "false").lower() == "true",
            ipset_writer=env.get("IPSET_WRITER", "false").lower() == "true",
        )


def parse_cidrs(text: str) -> tuple[IpNetwork, ...]:
    """Comma-separated CIDRs; a malformed entry is a configuration error worth failing loudly on."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class EnrichmentSettings:
    """Where Enrich Addresses finds its lists, keys and cache, whether addresses may leave, and how long it may take."""

    allow_list_parameter: str
    deny_list_parameter: str
    provider_keys_secret: str
    cache_table: str
    share_with_third_parties: bool
    deadline_seconds: float
    cache_seconds: int

    @classmethod
    def from_env(cls) -> EnrichmentSettings:
        env = os.environ
        return cls(
            allow_list_parameter=env.get("ALLOW_LIST_PARAMETER", ""),
            deny_list_parameter=env.get("DENY_LIST_PARAMETER", ""),
            provider_keys_secret=env.get("PROVIDER_KEYS_SECRET_ARN", ""),
            cache_table=env.get("ENRICHMENT_CACHE_TABLE_NAME", ""),
            # Anything but an explicit "true" keeps addresses inside the account.
            share_with_third_parties=env.get("SHARE_ADDRESSES_WITH_THIRD_PARTIES", "false").strip().lower() == "true",
            deadline_seconds=float(env.get("ENRICHMENT_DEADLINE_SECONDS", "8")),
            cache_seconds=int(float(env.get("ENRICHMENT_CACHE_HOURS", "24")) * 3600),
        )


def parse_rule_range(text: str) -> tuple[int, int]:
    """ "71-80" -> (71, 80): the network ACL rule numbers reserved for Firebreak, both ends included."""
    first, _, last = text.partition("-")
    rules = (int(first), int(last or first))
    # 32767 is the ACL's own catch-all deny; rules must also come before the allow rules they are meant to override.
    if not 1 <= rules[0] <= rules[1] <= 32766:
        raise ValueError(f"network ACL rule range {text!r} is not first-last within 1-32766")
    return rules


def window_seconds(minutes: str) -> int:
    """The approval window in whole seconds, at least one (fractions of a minute are allowed)."""
    return max(1, round(float(minutes) * 60))
