"""Stack configuration, read from the environment the template gives every function."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from firebreak.models import Mode, Playbook

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


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
    release_state_machine_arn: str = ""
    chat_format: str = "none"
    write_back_guardduty: bool = False
    notify_on_start: bool = False
    event_bus_name: str = "default"

    def mode_for(self, playbook: Playbook) -> Mode:
        """The playbook's own mode where one is set, else the stack's."""
        return dict(self.playbook_modes).get(playbook, self.response_mode)

    @classmethod
    def from_env(cls) -> Settings:
        """Read per invocation, not at import: the local engine runs every function in one process."""
        env = os.environ
        block_ip_mode = env.get("BLOCK_IP_MODE", "inherit")
        return cls(
            incident_table=env.get("INCIDENT_TABLE_NAME", ""),
            responder_topic_arn=env.get("RESPONDER_TOPIC_ARN", ""),
            blocked_ipv4_set_arn=env.get("BLOCKED_IPV4_SET_ARN", ""),
            blocked_ipv6_set_arn=env.get("BLOCKED_IPV6_SET_ARN", ""),
            response_mode=Mode(env.get("RESPONSE_MODE", Mode.ENFORCE)),
            playbook_modes=() if block_ip_mode == "inherit" else ((Playbook.BLOCK_IP, Mode(block_ip_mode)),),
            allow_list=parse_cidrs(env.get("ALLOW_LIST_CIDRS", "")),
            max_addresses_per_incident=int(env.get("MAX_ADDRESSES_PER_INCIDENT", "50")),
            trusted_product_companies=tuple(
                part.strip() for part in env.get("TRUSTED_PRODUCT_COMPANIES", "aws").split(",") if part.strip()
            ),
            release_state_machine_arn=env.get("RELEASE_STATE_MACHINE_ARN", ""),
            chat_format=env.get("CHAT_NOTIFICATION_FORMAT", "none"),
            write_back_guardduty=env.get("WRITE_BACK_GUARDDUTY", "false").lower() == "true",
            notify_on_start=env.get("NOTIFY_ON_START", "false").lower() == "true",
            event_bus_name=env.get("INCIDENT_EVENT_BUS_NAME", "default"),
        )


def parse_cidrs(text: str) -> tuple[IpNetwork, ...]:
    """Comma-separated CIDRs; a malformed entry is a configuration error worth failing loudly on."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip())
