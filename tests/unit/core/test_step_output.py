from firebreak.containment.isolation import IsolationStatus
from firebreak.containment.task import TaskIsolation
from firebreak.core.models import Action, ActionType, Outcome


def test_a_steps_answer_reads_as_the_state_machine_expects_it() -> None:
    # GIVEN Isolate Task's answer: a status, an action, addresses and a flag
    action = Action(ActionType.CONTAIN_TASK, "arn:aws:ecs:us-east-1:123456789012:task/c/1", Outcome.APPLIED, "isolated")
    answer = TaskIsolation(IsolationStatus.ISOLATED, (action,), ("203.0.113.7",), None, stop_task=True)

    # WHEN it is turned into the step's output
    output = answer.to_dict()

    # THEN the enum is its value, the tuples are lists and the action is its dict
    assert output == {
        "status": "ISOLATED",
        "actions": [action.to_dict()],
        "block_addresses": ["203.0.113.7"],
        "suppressed_reason": None,
        "stop_task": True,
    }
