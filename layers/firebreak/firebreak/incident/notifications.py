"""What the responders read: a subject SNS accepts, a readable summary and a JSON document for machines.

One publish serves every subscriber through SNS's per-protocol message structure: email gets the summary, SQS and
Lambda the JSON document, and HTTPS either the JSON document or, with the chat format `chatbot`, an AWS Chatbot
(Amazon Q Developer in chat applications) custom notification, since Chatbot subscribes to a topic over HTTPS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from firebreak.containment.task import kubectl_steps, workload_line
from firebreak.core.models import OUTCOME_MARKS, Action, ActionType, Approval, Incident, IncidentStatus, Outcome, Triage
from firebreak.triage.incidents import CONTAINMENT_ACTIONS

if TYPE_CHECKING:
    from firebreak.core.models import Incident
    from firebreak.triage.approvals import ApprovalRequest

SUBJECT_LIMIT = 99  # SNS refuses subjects of 100 characters or more
CHATBOT_DESCRIPTION_LIMIT = 8000
_ADDED_TO_BLOCK_LIST = frozenset({Outcome.APPLIED})
MESSAGE_LIMIT_BYTES = 250_000  # SNS refuses messages over 256 KiB; the rest is room for attributes
LOCAL_RELEASE = "firebreak run --release EVENT_FILE..."
_NOT_SUBJECT_SAFE = re.compile(r"[^\x20-\x7e]")
_VERDICT_RANK = {"malicious": 3, "suspicious": 2, "unknown": 1, "benign": 0}


def _subject_safe(text: str) -> str:
    """Printable ASCII on one line: SNS rejects control characters, and email clients render the rest badly."""
    return _NOT_SUBJECT_SAFE.sub("?", text)[:SUBJECT_LIMIT]


def subject(status: IncidentStatus, triage: Triage) -> str:
    return _subject_safe(f"Firebreak {status.value}: {triage.incident.finding_type}")


def finding_link(triage: Triage) -> str:
    incident = triage.incident
    if incident.source == "guardduty":
        search = quote(f"id={incident.finding_id}", safe="")
        return f"https://console.aws.amazon.com/guardduty/home?region={incident.region}#/findings?search={search}"
    search = quote(f"Id={incident.finding_id}", safe="")
    return f"https://console.aws.amazon.com/securityhub/home?region={incident.region}#/findings?search={search}"


def execution_link(region: str, execution_arn: str) -> str:
    return f"https://console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"


def verdicts(actions: Sequence[Action]) -> list[tuple[str, str, str]]:
    """(address, verdict, score) per enriched address: from the action's `after`, or the start of its reason."""
    found = []
    for action in actions:
        if action.type is not ActionType.ENRICH_IP:
            continue
        verdict = str(action.after.get("verdict") or action.reason.partition(" ")[0] or "unknown")
        score = action.after.get("score")
        if score is None:
            score = action.reason.partition("(")[2].partition(")")[0]
        found.append((action.target, verdict, str(score)))
    return found


def verdict_line(actions: Sequence[Action]) -> str | None:
    """The worst verdict first, then each address's: what enrichment concluded, in one line."""
    found = verdicts(actions)
    if not found:
        return None
    worst = max(found, key=lambda item: _VERDICT_RANK.get(item[1], 1))[1]
    return f"{worst}: " + "; ".join(f"{address} {verdict} ({score})" for address, verdict, score in found)


def changes(actions: Sequence[Action]) -> list[Action]:
    """The containment actions that changed the account: what a release would undo."""
    return [a for a in actions if a.type in CONTAINMENT_ACTIONS and a.outcome is Outcome.APPLIED]


def release_request(incident_id: str, release_arn: str) -> dict[str, Any]:
    """How to start the release: the state machine and its input, and the same as one AWS CLI command."""
    payload = json.dumps({"incident_id": incident_id})
    command = f"aws stepfunctions start-execution --state-machine-arn {release_arn} --input '{payload}'"
    return {
        "state_machine_arn": release_arn or None,
        "input": {"incident_id": incident_id},
        "command": command if release_arn else None,
        "local_command": LOCAL_RELEASE,
    }


def undo_lines(incident_id: str, actions: Sequence[Action], release_arn: str) -> list[str]:
    """The lines telling how to reverse what this incident changed; none when it changed nothing."""
    changed = changes(actions)
    if not changed:
        return []
    what = ", ".join(f"{a.type.value} {a.target}" for a in changed)
    request = release_request(incident_id, release_arn)
    lines = [f"Undo:      {what}"]
    if request["command"]:
        lines.append(f"  in AWS:  {request['command']}")
    lines.append(f"  locally: {LOCAL_RELEASE}")
    lines += [f"  by hand: {step}" for step in map(revoke_undo, changed) if step]
    lines += [f"  by hand: {step}" for step in map(bucket_undo, changed) if step]
    return lines


def undo_hint(actions: Sequence[Action]) -> str | None:
    """How to reverse what this incident changed, or None when it changed nothing."""
    blocked = [
        action.target
        for action in actions
        # Network ACL actions name "CIDR in network ACL of subnet"; lifting the CIDR lifts those entries too.
        if action.type is ActionType.BLOCK_IP and action.outcome in _ADDED_TO_BLOCK_LIST and " " not in action.target
    ]
    steps = [revoke_undo(action) for action in actions if action.type is ActionType.REVOKE_CREDENTIALS]
    steps += [bucket_undo(action) for action in actions if action.type is ActionType.PROTECT_BUCKET]
    steps += [function_undo(action) for action in actions if action.type is ActionType.CONTAIN_FUNCTION]
    if blocked:
        # The blocklist table is the truth: an address removed from an IPSet by hand is put back by the next sweep.
        steps.append(
            "delete the items "
            + ", ".join(blocked)
            + " from the Firebreak blocklist table (stack output BlocklistTableName); the next sweep lifts the blocks"
        )
    return "; ".join(step for step in steps if step) or None


def revoke_undo(action: Action) -> str | None:
    """The command that reverses one applied revocation step, read from its recorded before-state."""
    before = action.before
    if action.outcome is not Outcome.APPLIED:
        return None
    if "access_key_id" in before:
        return (
            f"aws iam update-access-key --user-name {before['user']} --access-key-id {before['access_key_id']}"
            f" --status {before['status']}"
        )
    if "policy_name" in before:
        kind = "user" if "user" in before else "role"
        if before.get("document") is not None:
            return f"restore the previous {before['policy_name']} of {kind} {before[kind]} from the incident record"
        return f"aws iam delete-{kind}-policy --{kind}-name {before[kind]} --policy-name {before['policy_name']}"
    if before.get("login_profile"):
        return f"aws iam create-login-profile --user-name {before['user']} (a new password)"
    return None


def bucket_undo(action: Action) -> str | None:
    """protect-bucket: what reverses one applied bucket step by hand, read from its recorded before-state."""
    before, bucket = action.before, action.target
    if action.outcome is not Outcome.APPLIED:
        return None
    if "public_access_block" in before:
        if before["public_access_block"] is None:
            return f"aws s3api delete-public-access-block --bucket {bucket}"
        return f"put the earlier Block Public Access of bucket {bucket} back from the incident record"
    if "logging" in before:
        return f"aws s3api put-bucket-logging --bucket {bucket} --bucket-logging-status '{{}}' (logging was off)"
    if "policy_statement" in before:
        added = sorted(
            set(action.after.get("principals") or action.after.get("objects") or ())
            - set(before.get("principals") or before.get("objects") or ())
        )
        return f"take {', '.join(added)} out of statement {before['policy_statement']} in the policy of bucket {bucket}"
    return None


def _bucket_lines(incident: Incident) -> list[str]:
    """protect-bucket: the buckets the finding names and the object Malware Protection found, for the responders."""
    names = incident.bucket_names
    if not names:
        return []
    return [f"Bucket:    {names[0]}" if len(names) == 1 else f"Buckets:   {', '.join(names)}"] + (
        [f"Object:    {incident.object_key} (kept as evidence; reads denied)"] if incident.object_key else []
    )


def function_undo(action: Action) -> str | None:
    """contain-function: the command that gives a stopped function back its reserved concurrency, or none."""
    if action.outcome is not Outcome.APPLIED or "reserved_concurrency" not in action.before:
        return None
    name, previous = action.before.get("function"), action.before["reserved_concurrency"]
    if previous is None:
        return f"aws lambda delete-function-concurrency --function-name {name}"
    return f"aws lambda put-function-concurrency --function-name {name} --reserved-concurrent-executions {previous}"


def _function_lines(incident: Incident) -> list[str]:
    """contain-function: the function and the execution role whose older sessions it denies."""
    if not incident.function_name:
        return []
    return [f"Function:  {incident.function_name} (execution role {incident.function_role_arn or 'unknown'})"]


def _action_lines(actions: Sequence[Action]) -> list[str]:
    lines = [
        f"  {OUTCOME_MARKS.get(a.outcome, '?')} {a.type.value} {a.target}: {a.outcome.value}"
        + (f" ({a.reason})" if a.reason else "")
        for a in actions
    ]
    return lines or ["  - none"]


def _header(triage: Triage) -> list[str]:
    incident = triage.incident
    return (
        [
            f"Finding:   {incident.finding_type} (severity {incident.severity:g} {incident.severity_label})"
            f" from {incident.product_name or incident.source}",
            f"Account:   {incident.account_id} {incident.region}",
            f"Resource:  {incident.resource_type} {incident.instance_id or incident.access_key_id or ''}".rstrip()
            + (f" ({incident.resource_role})" if incident.resource_role else ""),
            f"Playbook:  {triage.playbook.value}, mode {triage.mode.value}",
        ]
        + (
            [f"Principal: {incident.principal_type} {incident.principal_name or ''}".rstrip()]
            if incident.principal_type
            else []
        )
        + database_lines(incident)
    )


def database_lines(incident: Incident) -> list[str]:
    """contain-database: the database, and the user a person must rotate after a login that succeeded."""
    if not (incident.db_cluster_id or incident.db_instance_id):
        return []
    where = f"cluster {incident.db_cluster_id}" if incident.db_cluster_id else f"DB instance {incident.db_instance_id}"
    if incident.db_cluster_id and incident.db_instance_id:
        where += f" (instance {incident.db_instance_id})"
    lines = [f"Database:  {where}" + (f", {incident.db_engine}" if incident.db_engine else "")]
    if incident.db_user and "Successful" in incident.finding_type:
        database = f" of database {incident.db_name}" if incident.db_name else ""
        lines.append(
            f"Rotate:    database user {incident.db_user}{database}: change its password (or its IAM or Kerberos"
            " authentication) and end its open sessions from inside the database; Firebreak cannot, and a"
            " security group change does not cut sessions already open"
        )
    return lines


def summary(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    release_arn: str = "",
    request: ApprovalRequest | None = None,
) -> str:
    """The readable message: what happened, what was done, skipped and failed, where to look, how to undo."""
    incident = triage.incident
    lines = [f"Firebreak incident {triage.incident_id}: {status.value}", "", *_header(triage)]
    lines += _bucket_lines(incident) + _function_lines(incident)
    if workload := workload_line(incident):
        lines.append(f"Workload:  {workload}")
    verdict = verdict_line(actions)
    if verdict:
        lines.append(f"Verdict:   {verdict}")
    if triage.suppressed_reason:
        lines.append(f"Suppressed: {triage.suppressed_reason}")
    if triage.escalation:
        lines.append(f"Escalated: {triage.escalation}")
    if triage.approval:
        lines += _approval_lines(triage.approval, request)
    elif status is IncidentStatus.AWAITING_APPROVAL:
        lines.append("Approval:  the actions marked awaiting_approval run only when a responder approves them")
    if incident.title:
        lines.append(f"Title:     {incident.title}")
    lines += ["", "Actions:", *_action_lines(actions)]
    # contain-task: Firebreak cannot act inside a Kubernetes cluster, so it says exactly what a person runs.
    if steps := kubectl_steps(incident):
        lines += ["", "Kubernetes: Firebreak holds no cluster API; run these yourself:", *(f"  {s}" for s in steps)]
    lines += ["", f"Finding:   {finding_link(triage)}", f"Execution: {execution_link(incident.region, execution_arn)}"]
    lines += undo_lines(triage.incident_id, actions, release_arn)
    return "\n".join(lines)


def _approval_lines(approval: Approval, request: ApprovalRequest | None) -> list[str]:
    """Why the incident needs a person and, for a request, how to answer (never the Step Functions task token)."""
    lines = [f"Approval:  {approval.reason}"]
    if approval.decision:
        lines.append(f"Answer:    {approval.decision.value} by {approval.decided_by or 'a responder'}")
    if request:
        lines += [
            f"Decide by: {request.expires} (no answer by then: {approval.on_timeout.value})",
            f"Token:     {request.token}",
            'Answer:    POST {"token": "<token>", "decision": "approve"} (or "deny") to the stack\'s AnswerApprovalUrl',
            '           output, signed with SigV4 (curl --aws-sigv4 "aws:amz:<region>:lambda"), or invoke the',
            "           AnswerApprovalFunctionName output with that payload. The token answers once.",
        ]
    return lines


def document(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    release_arn: str = "",
    request: ApprovalRequest | None = None,
) -> dict[str, Any]:
    """The machine-readable message."""
    approval = None if triage.approval is None else triage.approval.to_dict()
    if approval is not None and request is not None:
        approval["request"] = request.to_dict()
    return {
        "version": 1,
        "incident_id": triage.incident_id,
        "status": status.value,
        "playbook": triage.playbook.value,
        "mode": triage.mode.value,
        "escalation": triage.escalation,
        "execution_arn": execution_arn,
        "verdict": verdict_line(actions),
        "finding": triage.incident.to_dict(),
        "actions": [action.to_dict() for action in actions],
        "release": release_request(triage.incident_id, release_arn) if changes(actions) else None,
        "approval": approval,
        "workload": workload_line(triage.incident),
        "kubectl_steps": list(kubectl_steps(triage.incident)),
    }


def chatbot_notification(
    status: IncidentStatus, triage: Triage, actions: Sequence[Action], execution_arn: str, release_arn: str = ""
) -> dict[str, Any]:
    """An AWS Chatbot custom notification (version 1.0, source custom) for Slack and Microsoft Teams channels."""
    incident = triage.incident
    verdict = verdict_line(actions)
    description = "\n".join(
        [
            f"*{incident.finding_type}* (severity {incident.severity:g} {incident.severity_label}), "
            f"playbook `{triage.playbook.value}` in mode `{triage.mode.value}`",
            *([f"Verdict: {verdict}"] if verdict else []),
            *(
                f"• `{a.type.value}` {a.target}: *{a.outcome.value}*" + (f" ({a.reason})" if a.reason else "")
                for a in actions
            ),
        ]
    )[:CHATBOT_DESCRIPTION_LIMIT]
    next_steps = [
        f"<{finding_link(triage)}|Open the finding>",
        f"<{execution_link(incident.region, execution_arn)}|Open the execution>",
    ]
    request = release_request(triage.incident_id, release_arn)
    if changes(actions) and request["command"]:
        next_steps.append(f"Undo: `{request['command']}`")
    related = [value for value in (incident.instance_id, incident.access_key_id, incident.bucket_name) if value]
    return {
        "version": "1.0",
        "source": "custom",
        "id": f"{triage.incident_id}-{status.value}",
        "content": {
            "textType": "client-markdown",
            "title": subject(status, triage),
            "description": description,
            "nextSteps": next_steps,
            "keywords": [status.value, triage.playbook.value, incident.severity_label],
        },
        "metadata": {
            "threadId": triage.incident_id,
            "summary": subject(status, triage),
            "eventType": "FirebreakIncident",
            "relatedResources": related + [a.target for a in changes(actions)],
            "additionalContext": {"incident_id": triage.incident_id, "status": status.value},
        },
    }


def sns_message(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    release_arn: str = "",
    chat_format: str = "none",
    request: ApprovalRequest | None = None,
) -> str:
    """One publish, several audiences: email gets the summary, queues and functions JSON, HTTPS JSON or Chatbot.

    A port probe can name hundreds of addresses; past SNS's size limit the message lists the first actions and says
    how many more the incident record holds, rather than failing the publish and losing the whole notification.
    """
    shown = len(actions)
    while True:
        message = _structured(status, triage, actions, execution_arn, release_arn, chat_format, shown, request)
        if len(message.encode()) <= MESSAGE_LIMIT_BYTES or shown == 0:
            return message
        shown //= 2


def _structured(
    status: IncidentStatus,
    triage: Triage,
    actions: Sequence[Action],
    execution_arn: str,
    release_arn: str,
    chat_format: str,
    shown: int,
    request: ApprovalRequest | None,
) -> str:
    listed = list(actions[:shown])
    machine_document = document(status, triage, listed, execution_arn, release_arn, request)
    text = summary(status, triage, listed, execution_arn, release_arn, request)
    if shown < len(actions):
        machine_document["actions_not_listed"] = len(actions) - shown
        text += f"\n\n{len(actions) - shown} more actions are in the incident record."
    machine = json.dumps(machine_document)
    https = (
        json.dumps(chatbot_notification(status, triage, listed, execution_arn, release_arn))
        if chat_format == "chatbot"
        else machine
    )
    return json.dumps({"default": text, "email": text, "sqs": machine, "lambda": machine, "https": https})


def started_subject(triage: Triage) -> str:
    return _subject_safe(f"Firebreak STARTED: {triage.incident.finding_type}")


def started_summary(triage: Triage, execution_arn: str) -> str:
    """Told as the incident opens, before the playbook has acted (optional: the outcome follows within seconds)."""
    lines = [f"Firebreak incident {triage.incident_id}: started", "", *_header(triage), ""]
    lines += [
        f"Finding:   {finding_link(triage)}",
        f"Execution: {execution_link(triage.incident.region, execution_arn)}",
    ]
    return "\n".join(lines)


def release_subject(status: str, previous: str, triage: Triage | None, incident_id: str) -> str:
    about = triage.incident.finding_type if triage else incident_id
    if status == IncidentStatus.RELEASED:
        return _subject_safe(f"Firebreak RELEASED: {about}")
    return _subject_safe(f"Firebreak RELEASE INCOMPLETE ({status}): {about}")


def release_summary(
    status: str, previous: str, triage: Triage | None, incident_id: str, entries: Sequence[Action], execution_arn: str
) -> str:
    """What a release undid, what it refused because someone changed it since, and what failed."""
    done = status == IncidentStatus.RELEASED
    title = "released" if done else f"not fully released, now {status}"
    lines = [f"Firebreak incident {incident_id}: {title} (was {previous})", ""]
    if triage:
        lines += _header(triage)
    lines += ["", "Release:", *_action_lines(entries)]
    if not done:
        lines += [
            "",
            "Refused actions were changed by someone since Firebreak acted; they are left as they are. Failed and "
            "skipped actions are still in place: a later release tries them again.",
        ]
    region = triage.incident.region if triage else execution_arn.split(":")[3] if execution_arn.count(":") > 3 else ""
    lines += ["", f"Execution: {execution_link(region, execution_arn)}"]
    return "\n".join(lines)


def release_message(
    status: str,
    previous: str,
    triage: Triage | None,
    incident_id: str,
    entries: Sequence[Action],
    execution_arn: str,
    chat_format: str = "none",
) -> str:
    """The release's publish, structured per protocol like the incident's own."""
    text = release_summary(status, previous, triage, incident_id, entries, execution_arn)
    machine = json.dumps(
        {
            "version": 1,
            "incident_id": incident_id,
            "status": status,
            "previous_status": previous,
            "execution_arn": execution_arn,
            "actions": [entry.to_dict() for entry in entries],
        }
    )
    https = machine
    if chat_format == "chatbot":
        title = release_subject(status, previous, triage, incident_id)
        lines = [
            f"• `{e.type.value}` {e.target}: *{e.outcome.value}*" + (f" ({e.reason})" if e.reason else "")
            for e in entries
        ]
        chat = {
            "version": "1.0",
            "source": "custom",
            "id": f"{incident_id}-release-{status}",
            "content": {
                "textType": "client-markdown",
                "title": title,
                "description": "\n".join(lines)[:CHATBOT_DESCRIPTION_LIMIT],
                "keywords": [status, "release"],
            },
            "metadata": {"threadId": incident_id, "summary": title, "eventType": "FirebreakRelease"},
        }
        https = json.dumps(chat)
    return json.dumps({"default": text, "email": text, "sqs": machine, "lambda": machine, "https": https})
