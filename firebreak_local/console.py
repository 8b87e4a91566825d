"""The readable side of `firebreak run`: progress, a timeline per event, and a summary table."""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any


def progress(index: int, total: int, path: str, out: IO[str]) -> None:
    out.write(f"\n[{index}/{total}] {Path(path).name} ... ")
    out.flush()


def timeline(result: dict[str, Any], out: IO[str]) -> None:
    # The layer is importable once the engine has started, which a timeline always follows.
    from firebreak.core.models import OUTCOME_MARKS

    out.write(f"{result['status']} ({result['duration_ms']:.0f} ms)\n")
    if not result["triggered"]:
        out.write("    no rule of the template matches this event: nothing started\n")
        return
    incident = result.get("incident") or {}
    out.write(f"    rule      {result['rule']}\n")
    if incident:
        ips = ", ".join(incident.get("remote_ips") or []) or "none"
        out.write(f"    finding   {incident.get('finding_type')} severity {incident.get('severity')}, remote {ips}\n")
    if result.get("playbook"):
        out.write(f"    incident  {result['incident_id']} -> {result['playbook']} ({result.get('mode')})\n")
    elif result.get("incident_id"):
        out.write(f"    incident  {result['incident_id']}\n")
    if result.get("reason"):
        out.write(f"    reason    {result['reason']}\n")
    out.write(f"    states    {' > '.join(result['states'])}\n")
    for action in result["actions"]:
        mark = OUTCOME_MARKS.get(action["outcome"], "?")
        reason = f"  {action['reason']}" if action.get("reason") else ""
        out.write(f"      {mark} {action['type']:<12} {action['target']:<28} {action['outcome']:<15}{reason}\n")
    if result.get("metrics"):
        out.write(f"    metrics   {', '.join(_metric(metric) for metric in result['metrics'])}\n")


_UNITS = {"Seconds": " s", "Milliseconds": " ms", "Percent": " %", "Count": "", "None": ""}


def _metric(metric: dict[str, Any]) -> str:
    """`TimeToContain 2.41 s (playbook contain-instance)`: the value as CloudWatch would graph it."""
    unit = _UNITS.get(metric["unit"], f" {metric['unit']}")
    dimensions = ", ".join(f"{key} {value}" for key, value in metric["dimensions"].items() if key != "service")
    return f"{metric['name']} {metric['value']:.4g}{unit}" + (f" ({dimensions})" if dimensions else "")


def summary(document: dict[str, Any], out: IO[str]) -> None:
    results, world = document["results"], document["world"]
    out.write("\nSummary\n")
    out.write(f"  {'event':<48} {'status':<20} {'playbook':<18} {'mode':<8} {'ms':>6}\n")
    for item in results:
        name = Path(item["event_file"]).name
        out.write(
            f"  {name:<48} {item['status']:<20} {item.get('playbook') or '-':<18} "
            f"{item.get('mode') or '-':<8} {item['duration_ms']:>6.0f}\n"
        )
    blocked = ", ".join(world["blocked_ips"]) or "none"
    out.write(f"\n  WAF block list: {blocked}\n")
    if world.get("access_keys") or world.get("revoked_roles"):
        keys = ", ".join(f"{key} {status}" for key, status in world.get("access_keys", {}).items()) or "none"
        out.write(f"  Access keys: {keys}   Revoked roles: {', '.join(world.get('revoked_roles', [])) or 'none'}\n")
    out.write(f"  Incident records: {world['incidents']}   Notifications sent: {len(world['notifications'])}\n")
    if "incident_events" in world:
        out.write(
            f"  Status events: {len(world['incident_events'])}   "
            f"Security Hub updates: {len(world.get('finding_updates', []))}\n"
        )
